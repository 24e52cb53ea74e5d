import Foundation

extension Date {
    /// This date in UTC to the second, the fraction dropped: `2026-11-29T10:15:00Z`, or with
    /// `compact`, `20261129T101500Z`, or with `milliseconds`, `2026-11-29T10:15:00.042Z`. Made for every upload (its id and its receipt), so
    /// with `gmtime_r` rather than a calendar or formatter, which on Linux bring up ICU.
    public func utcTimestamp(compact: Bool = false, milliseconds: Bool = false) -> String {
        let whole = timeIntervalSince1970.rounded(.down)
        var seconds = time_t(whole)
        var utc = tm()
        gmtime_r(&seconds, &utc)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let (dash, colon) = compact ? ("", "") : ("-", ":")
        return "\(utc.tm_year + 1900)\(dash)\(two(utc.tm_mon + 1))\(dash)\(two(utc.tm_mday))T"
            + "\(two(utc.tm_hour))\(colon)\(two(utc.tm_min))\(colon)\(two(utc.tm_sec))"
            + (milliseconds ? Self.millisecondsFraction(timeIntervalSince1970 - whole) : "") + "Z"
    }

    private static func millisecondsFraction(_ fraction: Double) -> String {
        let value = min(999, Int(fraction * 1000))
        return value < 10 ? ".00\(value)" : value < 100 ? ".0\(value)" : ".\(value)"
    }
}
