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

    /// The text stored (see `Date.registryText`).
    var text: String { date.registryText }

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
