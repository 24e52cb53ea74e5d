import Foundation
import GRDB
import Testing
@testable import WharfStore

@Suite struct StoredDateTests {
    /// Instants whose text is easy to get wrong: the epoch, the last millisecond before it
    /// (negative times round down, not towards zero), fractions either side of a half millisecond,
    /// leap days, the end of a year, and the far future that parked schedules use.
    static let awkward: [Date] = [
        Date(timeIntervalSince1970: 0),
        Date(timeIntervalSince1970: -0.001),
        Date(timeIntervalSince1970: -0.0004),
        Date(timeIntervalSince1970: 1_764_400_000.9999),
        Date(timeIntervalSince1970: 1_764_400_000.0005),
        Date(timeIntervalSince1970: 1_764_400_000.0004),
        Date(timeIntervalSince1970: 951_782_400.5),  // 2000-02-29 00:00:00.500
        Date(timeIntervalSince1970: 1_767_225_599.999),  // 2025-12-31 23:59:59.999
        Date(timeIntervalSince1970: -5_000_000_000),  // 1811
        Date.distantFuture,
    ]

    @Test func writesTheTextGRDBWritesForTheSameDate() {
        var generator = SystemRandomNumberGenerator()
        // Random instants between 1590 and 4001, to the sub-millisecond.
        let random = (0..<20_000).map { _ in
            Date(timeIntervalSince1970: Double.random(in: -11_994_000_000...64_092_211_200, using: &generator))
        }
        for date in Self.awkward + random {
            #expect(date.stored.databaseValue == date.databaseValue, "\(date.timeIntervalSince1970)")
        }
    }

    @Test func readsWhatGRDBReadsFromTheSameText() throws {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<20_000).map { _ in
            Date(timeIntervalSince1970: Double.random(in: -11_994_000_000...64_092_211_200, using: &generator))
        }
        for date in Self.awkward + random {
            let text = date.stored.text
            let ours = try #require(StoredDate.parse(text), "\(text)")
            let grdbs = try #require(Date.fromDatabaseValue(text.databaseValue), "\(text)")
            // The same millisecond; the doubles may differ in their last bits (far from 1970,
            // a few microseconds), as the two compute them differently.
            #expect(ours.stored.text == text)
            #expect(abs(ours.timeIntervalSince1970 - grdbs.timeIntervalSince1970) < 0.000_1, "\(text)")
        }
    }

    @Test func leavesOtherTextsToGRDB() {
        // Not the registry's own format, or not a date: parse declines...
        for text in ["2026-11-29", "2026-11-29T10:00:00.000", "2026-11-29 10:00:00", "2026-02-30 10:00:00.000",
                     "2026-13-01 10:00:00.000", "2026-11-29 24:00:00.000", "2026-11-29 10:00:00.0x0", ""] {
            #expect(StoredDate.parse(text) == nil, "\(text)")
        }
        // ...and reading falls back to GRDB, which knows more formats.
        let dateOnly = StoredDate.fromDatabaseValue("2026-11-29".databaseValue)
        #expect(dateOnly?.date == Date.fromDatabaseValue("2026-11-29".databaseValue))
        #expect(dateOnly != nil)
    }

    @Test func readsBackTheDateToTheMillisecond() throws {
        let queue = try DatabaseQueue()
        for date in Self.awkward {
            let read = try queue.read { db in
                try Date.fetchOne(db, sql: "SELECT ?", arguments: [date.stored])
            }
            let rounded = (date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down) / 1000
            #expect(abs((read?.timeIntervalSince1970 ?? .nan) - rounded) < 0.000_01, "\(date.timeIntervalSince1970)")
        }
    }

    @Test func sortsAsTheDatesDo() throws {
        let texts = Self.awkward.sorted().map(\.stored.text)
        #expect(texts == texts.sorted())
        #expect(Date(timeIntervalSince1970: 951_782_400.5).stored.text == "2000-02-29 00:00:00.500")
        #expect(Date(timeIntervalSince1970: -0.001).stored.text == "1969-12-31 23:59:59.999")
        #expect(Date(timeIntervalSince1970: 1_767_225_599.9996).stored.text == "2026-01-01 00:00:00.000")
    }
}
