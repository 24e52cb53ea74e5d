import Foundation

extension Date {
    /// This date in UTC to the second, the fraction dropped: `2026-11-29T10:15:00Z`, or with
    /// `compact`, `20261129T101500Z`. Made for every upload (its id and its receipt), so
    /// with `gmtime_r` rather than a calendar or formatter, which on Linux bring up ICU.
    public func utcTimestamp(compact: Bool = false) -> String {
        var seconds = time_t(timeIntervalSince1970.rounded(.down))
        var utc = tm()
        gmtime_r(&seconds, &utc)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let (dash, colon) = compact ? ("", "") : ("-", ":")
        return "\(utc.tm_year + 1900)\(dash)\(two(utc.tm_mon + 1))\(dash)\(two(utc.tm_mday))T"
            + "\(two(utc.tm_hour))\(colon)\(two(utc.tm_min))\(colon)\(two(utc.tm_sec))Z"
    }
}
