import Foundation

/// The outbox of a pull partner, as the listener serves it (`GET /outbox`): the transfers
/// waiting for the partner to fetch them, and their acknowledgement; and, for the worker,
/// the ones not fetched in time.
///
/// Every method is a blocking call (call it from a thread that may block).
public protocol PullOutbox: Sendable {
    /// `partner`'s transfers waiting to be fetched (queued or retrying), oldest first,
    /// after the one with id `after` if given, at most `limit`.
    func outbox(of partner: String, after: String?, limit: Int) throws(WharfError) -> [Transfer]

    /// Transfer `id` if it is `partner`'s, in any state; `nil` for none or another
    /// partner's, which the caller cannot tell apart.
    func outboxTransfer(id: String, of partner: String) throws(WharfError) -> Transfer?

    /// Records that `partner` fetched and acknowledged transfer `id`, in one commit: an
    /// attempt (the whole file, from `remoteAddress`), the transfer `delivered` with the
    /// receipt and its signature `receipt` makes of it (given it with `deliveredAt` set), the audit event;
    /// then runs `install` (the file moves to `sent/`; if that fails, the acknowledgement
    /// stays recorded and recovery moves the file at the next start). A transfer delivered before is returned unchanged, `install` not run; `nil` if
    /// there is no such transfer of `partner`'s.
    func acknowledge(
        _ id: String, of partner: String, at now: Date, remoteAddress: String?,
        receipt: (Transfer) -> (json: String, signature: String?), install: (Transfer) throws -> Void
    ) throws(WharfError) -> Transfer?

    /// Marks `dead` the pull partners' waiting transfers queued longer ago than their
    /// partner's maximum age (`defaultMaxAge` unless it sets one), with the reason and an
    /// audit event each, and returns them.
    func expireUnfetched(now: Date, defaultMaxAge: Double) throws(WharfError) -> [Transfer]
}
