import Foundation

/// The schedules the intake runs, and what a `--keep` schedule last sent.
///
/// Blocking: call from a thread that may block.
public protocol ScheduleStore: Sendable {
    /// Schedules whose next run is at or before `now`, earliest first.
    func dueSchedules(now: Date) throws(WharfError) -> [Schedule]

    /// Takes the run of schedule `scheduleID` due at `slot` (its next run as read) by moving
    /// its next run to `next`, unless another caller (another node) moved it first; durable
    /// when this returns. `true`: this caller took the slot and runs it, once. The slot is
    /// taken before the run, so a crash between the two skips that run rather than making
    /// it twice; what it would have queued is still in the schedule's directory for the next.
    func takeSlot(of scheduleID: Int64, slot: Date, next: Date) throws(WharfError) -> Bool

    /// The SHA-256 that a `--keep` schedule last queued for `path`.
    func lastSent(by scheduleID: Int64, path: String) throws(WharfError) -> String?
}
