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

    /// The date `text` names if it is exactly `yyyy-MM-dd HH:mm:ss.SSS` (see `Date(registryText:)`).
    static func parse(_ text: String) -> Date? {
        Date(registryText: text)
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
