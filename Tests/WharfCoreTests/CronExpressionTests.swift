import Foundation
import Testing
import WharfCore

@Suite struct CronExpressionTests {
    var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        return calendar
    }

    func date(_ text: String) throws -> Date {
        let formatter = DateFormatter()
        formatter.calendar = calendar
        formatter.timeZone = calendar.timeZone
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return try #require(formatter.date(from: text))
    }

    @Test(arguments: [
        ("* * * * *", "2026-03-10 10:00", "2026-03-10 10:01"),
        ("*/15 * * * *", "2026-03-10 10:07", "2026-03-10 10:15"),
        ("0 6 * * *", "2026-03-10 06:00", "2026-03-11 06:00"),
        ("0 6 * * MON-FRI", "2026-03-13 07:00", "2026-03-16 06:00"),
        ("30 2 1 * *", "2026-03-10 10:00", "2026-04-01 02:30"),
        ("0 0 * JAN,JUL *", "2026-03-10 10:00", "2026-07-01 00:00"),
        ("0 12 13 * FRI", "2026-03-10 10:00", "2026-03-13 12:00"),
        ("0 0 * * 7", "2026-03-10 10:00", "2026-03-15 00:00"),
        ("5-10/5 8 * * *", "2026-03-10 08:05", "2026-03-10 08:10"),
        // 02:30 does not exist on the day clocks spring forward in Berlin.
        ("30 2 * * *", "2026-03-28 03:00", "2026-03-30 02:30"),
    ])
    func nextFiringTime(expression: String, after: String, expected: String) throws {
        let cron = try CronExpression(parsing: expression)
        #expect(cron.next(after: try date(after), calendar: calendar) == (try date(expected)))
    }

    @Test func anExpressionThatNeverFiresHasNoNextTime() throws {
        #expect(try CronExpression(parsing: "0 0 31 2 *").next(after: Date(), calendar: calendar) == nil)
    }

    @Test(arguments: ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                      "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * FOO *", "1,,2 * * * *"])
    func malformedExpressionsAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try CronExpression(parsing: text) }
    }
}
