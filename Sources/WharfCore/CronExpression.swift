import Foundation

/// A standard five-field cron expression: minute, hour, day of month, month, day of week.
///
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b,c` and steps `*/n` or `a-b/n`;
/// months and weekdays also take names (`JAN`, `MON`); Sunday is 0 or 7. As in cron, when
/// both the day of month and the day of week are restricted, a day matching either fires.
/// Times are local (the calendar's time zone).
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public init(parsing text: String) throws(WharfError) {
        let fields = text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard fields.count == 5 else {
            throw .invalid(
                "'\(text)' is not a five-field cron expression",
                fix: "write minute hour day-of-month month day-of-week, for example '*/15 * * * *' or '0 6 * * MON-FRI'"
            )
        }
        let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        description = fields.joined(separator: " ")
        minutes = try Self.field(fields[0], 0...59, name: "minute")
        hours = try Self.field(fields[1], 0...23, name: "hour")
        daysOfMonth = try Self.field(fields[2], 1...31, name: "day of month")
        months = try Self.field(fields[3], 1...12, name: "month", names: monthNames, firstNameValue: 1)
        let weekdays = try Self.field(fields[4], 0...7, name: "day of week", names: dayNames, firstNameValue: 0)
        daysOfWeek = Set(weekdays.map { $0 % 7 })
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
    }

    /// The first firing time strictly after `date`, to the minute; `nil` if none within
    /// eight years (an expression such as `0 0 31 2 *` never fires).
    public func next(after date: Date, calendar: Calendar = .current) -> Date? {
        guard var day = calendar.dateInterval(of: .day, for: date)?.start else { return nil }
        for _ in 0..<(366 * 8) {
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            if let month = parts.month, let dayOfMonth = parts.day, let weekday = parts.weekday,
               months.contains(month), matchesDay(dayOfMonth: dayOfMonth, weekday: weekday - 1) {
                for hour in hours.sorted() {
                    for minute in minutes.sorted() {
                        var components = parts
                        components.weekday = nil
                        components.hour = hour
                        components.minute = minute
                        components.second = 0
                        // A time skipped by a daylight-saving change does not exist; skip it too.
                        guard let candidate = calendar.date(from: components),
                              calendar.component(.hour, from: candidate) == hour,
                              candidate > date
                        else { continue }
                        return candidate
                    }
                }
            }
            guard let following = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = following
        }
        return nil
    }

    private func matchesDay(dayOfMonth: Int, weekday: Int) -> Bool {
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): daysOfMonth.contains(dayOfMonth) || daysOfWeek.contains(weekday)
        case (true, false): daysOfMonth.contains(dayOfMonth)
        case (false, true): daysOfWeek.contains(weekday)
        case (false, false): true
        }
    }

    private static func field(
        _ text: String, _ range: ClosedRange<Int>, name: String, names: [String] = [], firstNameValue: Int = 0
    ) throws(WharfError) -> Set<Int> {
        let invalid = WharfError.invalid(
            "'\(text)' is not a valid \(name) field",
            fix: "use *, numbers \(range.lowerBound)-\(range.upperBound)\(names.isEmpty ? "" : " or names such as \(names[1])"), ranges a-b, lists a,b and steps */n"
        )
        func value(_ token: Substring) throws(WharfError) -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let index = names.firstIndex(of: token.uppercased()) { return index + firstNameValue }
            throw invalid
        }
        var result = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw invalid }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw invalid }
                step = parsed
            }
            let bounds: ClosedRange<Int>
            if pieces[0] == "*" {
                bounds = range
            } else {
                let ends = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                switch ends.count {
                case 1:
                    let start = try value(ends[0])
                    bounds = start...(pieces.count == 2 ? range.upperBound : start)
                case 2:
                    let (start, end) = (try value(ends[0]), try value(ends[1]))
                    guard start <= end else { throw invalid }
                    bounds = start...end
                default:
                    throw invalid
                }
            }
            result.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return result
    }
}
