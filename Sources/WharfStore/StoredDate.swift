import Foundation
import GRDB

/// A date as the registry stores it: GRDB's own text format, `yyyy-MM-dd HH:mm:ss.SSS` in
/// UTC, so that every row compares and sorts alike whichever wrote it.
///
/// GRDB writes a `Date` through a `DateFormatter`, which on Linux brings up ICU's locale,
/// calendar and time-zone data: a few megabytes of a server's resident memory for the
/// first date written, and a formatter call for each one after (two per upload). This
/// writes the same text with `gmtime_r` and reads it back with `timegm`. GRDB reads a
/// `Date` through a calendar whose locale is ICU's, so reading goes through here too;
/// other texts GRDB accepts as dates are still left to it.
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
        if case .string(let text) = dbValue.storage, let date = parse(text) { return StoredDate(date) }
        return Date.fromDatabaseValue(dbValue).map(StoredDate.init)
    }

    /// The date `text` names if it is exactly `yyyy-MM-dd HH:mm:ss.SSS` with fields in range
    /// (what the registry writes); `nil` for anything else.
    static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { bytes -> Date? in
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
        }
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

extension Row {
    /// The date in `column`, read as the registry writes dates (see `StoredDate`).
    func date(_ column: String) -> Date {
        (self[column] as StoredDate).date
    }

    /// The date in `column`, or `nil` if it is NULL.
    func optionalDate(_ column: String) -> Date? {
        (self[column] as StoredDate?)?.date
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
