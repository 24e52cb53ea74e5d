import Foundation

/// The hook events waiting to be dispatched. The stores queue them themselves, in the
/// same transaction as the receipt or the transition they describe, so an event is never
/// lost and never announces what was not committed.
///
/// Blocking: call from a thread that may block.
public protocol HookQueue: Sendable {
    /// Pending events due at `now` (at most `limit`, oldest first) with their hooks. Each is
    /// leased for its hook's timeout and `margin` seconds more (not due again before then),
    /// so one a crash interrupted is dispatched again when its lease runs out, and one
    /// being dispatched is not taken twice.
    func claimHookEvents(now: Date, margin: Double, limit: Int) throws(WharfError) -> [(HookEvent, Hook)]

    /// Records how the dispatch of event `id` ended; durable when this returns.
    func finishHookEvent(_ id: Int64, outcome: HookOutcome, at now: Date) throws(WharfError)
}
