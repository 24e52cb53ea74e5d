import Foundation

extension Date {
    /// This date as the registries write it into the audit chain and SQLite stores it:
    /// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, to the nearest millisecond (half a millisecond
    /// rounds up), as Foundation's formatter rounds. Texts of dates from 1583 on sort as the
    /// dates do. Made with `gmtime_r` rather than a formatter, which on Linux brings up ICU.
    public var registryText: String {
        let milliseconds = Int64((timeIntervalSince1970 * 1000 + 0.5).rounded(.down))
        var seconds = time_t(milliseconds.floorDivided(by: 1000))
        let fraction = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let fields = [
            (Int(parts.tm_year) + 1900, 4), (Int(parts.tm_mon) + 1, 2), (Int(parts.tm_mday), 2),
            (Int(parts.tm_hour), 2), (Int(parts.tm_min), 2), (Int(parts.tm_sec), 2), (fraction, 3),
        ]
        let separators: [UInt8] = Array("-- ::.".utf8)
        return String(unsafeUninitializedCapacity: 23) { buffer in
            var end = 0
            for (index, (value, width)) in fields.enumerated() {
                var value = value
                for position in stride(from: end + width - 1, through: end, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                end += width
                if index < separators.count {
                    buffer[end] = separators[index]
                    end += 1
                }
            }
            return end
        }
    }

    /// This date rounded to the millisecond, as `registryText` writes it: what a store
    /// keeping finer times (PostgreSQL's microseconds) stores, so both registries read back
    /// the same dates.
    public var roundedToMilliseconds: Date {
        Date(timeIntervalSince1970: (timeIntervalSince1970 * 1000 + 0.5).rounded(.down) / 1000)
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
