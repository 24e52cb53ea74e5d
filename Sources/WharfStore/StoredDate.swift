import Foundation
import GRDB

/// A date as the registry stores it: GRDB's own text format, `yyyy-MM-dd HH:mm:ss.SSS` in
/// UTC, so that every row compares and sorts alike whichever wrote it.
///
/// GRDB writes a `Date` through a `DateFormatter`, which on Linux brings up ICU's locale,
/// calendar and time-zone data: a few megabytes of a server's resident memory for the
/// first date written, and a formatter call for each one after (two per upload). This
/// writes the same text with `gmtime_r`. Reading is left to GRDB, which parses the text
/// without a formatter.
struct StoredDate: DatabaseValueConvertible {
    let date: Date

    init(_ date: Date) {
        self.date = date
    }

    /// The text stored, to the nearest millisecond (half a millisecond rounds up), as
    /// Foundation's formatter rounds. Dates from 1583 on (from then, ICU's calendar and the
    /// proleptic Gregorian one `gmtime_r` uses agree) give the formatter's text exactly.
    var text: String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down))
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

    var databaseValue: DatabaseValue {
        text.databaseValue
    }

    static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredDate? {
        Date.fromDatabaseValue(dbValue).map(StoredDate.init)
    }
}

extension Date {
    /// This date as a statement argument, written as GRDB would write it (see `StoredDate`).
    var stored: StoredDate { StoredDate(self) }
}

extension Optional where Wrapped == Date {
    /// This date, if any, as a statement argument (see `StoredDate`).
    var stored: StoredDate? { map(StoredDate.init) }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
