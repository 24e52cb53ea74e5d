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

    /// The date `text` names if it is exactly `yyyy-MM-dd HH:mm:ss.SSS` with fields in range
    /// (what the registries write, `registryText`); `nil` for anything else.
    public init?(registryText text: String) {
        var text = text
        guard let date = text.withUTF8({ bytes -> Date? in
            guard bytes.count == 23 else { return nil }
            func number(_ start: Int, _ width: Int) -> Int? {
                var value = 0
                for byte in bytes[start..<start + width] {
                    guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                }
                return value
            }
            let separators: [(Int, Character)] = [(4, "-"), (7, "-"), (10, " "), (13, ":"), (16, ":"), (19, ".")]
            guard separators.allSatisfy({ bytes[$0.0] == $0.1.asciiValue }),
                  let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
                  let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
                  let millisecond = number(20, 3),
                  (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
            else { return nil }
            var parts = tm()
            parts.tm_year = Int32(year - 1900)
            parts.tm_mon = Int32(month - 1)
            parts.tm_mday = Int32(day)
            parts.tm_hour = Int32(hour)
            parts.tm_min = Int32(minute)
            parts.tm_sec = Int32(second)
            let seconds = timegm(&parts)
            // timegm normalizes an impossible day (February 30th) into the next month.
            guard parts.tm_mday == Int32(day) else { return nil }
            return Date(timeIntervalSince1970: Double(seconds) + Double(millisecond) / 1000)
        }) else { return nil }
        self = date
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
