import Foundation

/// The schedules the intake runs, and what a `--keep` schedule last sent.
///
/// Blocking: call from a thread that may block.
public protocol ScheduleStore: Sendable {
    /// Schedules whose next run is at or before `now`, earliest first.
    func dueSchedules(now: Date) throws(WharfError) -> [Schedule]

    /// Sets when a schedule runs next; durable when this returns.
    func setNextRun(of scheduleID: Int64, to date: Date) throws(WharfError)

    /// The SHA-256 that a `--keep` schedule last queued for `path`.
    func lastSent(by scheduleID: Int64, path: String) throws(WharfError) -> String?
}
