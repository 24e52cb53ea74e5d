import Foundation

/// The outbound queue: transfers and their attempts. Every change of a transfer's state
/// goes through a `Transfer.Transition` and its guard; a change the transfer's state does
/// not allow throws `transition_refused` and changes nothing.
///
/// Blocking: call from a thread that may block. "Durable" below means committed and
/// fsynced when the method returns.
public protocol TransferQueue: Sendable {
    /// Records `transfer` as queued (durable), then runs `install` (moving its file to
    /// `spool/outgoing/`); if `install` throws, the transfer is withdrawn again. With
    /// `schedule`, the same transaction remembers that the schedule sent `path` with the
    /// transfer's SHA-256 (withdrawn with it).
    func enqueue(_ transfer: Transfer, sentBy schedule: (id: Int64, path: String)?, install: () throws -> Void) throws(WharfError)

    /// Claims transfers due at `now` (`claim`), at most `limit`, and for each partner at
    /// most its delivery limit (`defaultPerPartner` unless it sets one) counting those
    /// already sending. Transfers of disabled partners wait. Not durable: a claim a crash
    /// loses leaves the transfer due, and `recoverInterrupted` makes one that was kept due.
    func claimDue(now: Date, defaultPerPartner: Int, limit: Int) throws(WharfError) -> TransferClaim

    /// Extends the claims this node holds on `transferIDs` while their attempts run, and
    /// returns those it still holds. A store whose claims do not expire (one node on
    /// SQLite) holds every claim until it is finished.
    func renewClaims(_ transferIDs: [String], now: Date) throws(WharfError) -> Set<String>

    /// Records `attempt` and the transition `outcome` names, in one durable transaction,
    /// then runs `install` (moving a delivered file to `sent/`). With `claimingNext`, the
    /// same transaction may claim one transfer due then for the slot this attempt frees and
    /// return it; if `install` throws, that transfer is released again. A store may claim
    /// none (`nil`): the worker then claims for the slot in its next round.
    @discardableResult
    func finish(
        _ transfer: Transfer, attempt: DeliveryAttempt, outcome: AttemptOutcome,
        claimingNext next: (now: Date, defaultPerPartner: Int)?, install: () throws -> Void
    ) throws(WharfError) -> TransferClaim?

    /// `release`: a `sending` transfer back to `retrying` at `date` with no attempt on
    /// record, the last resort when an attempt could not be recorded. Durable.
    func release(_ transferID: String, retryAt date: Date, reason: String) throws(WharfError)

    /// `kill`: a claimed transfer that cannot be attempted (its partner or file is gone)
    /// becomes dead with `reason`, no attempt on record. Durable.
    func kill(_ transferID: String, reason: String) throws(WharfError)

    /// `retry`: a dead or waiting transfer back in the queue, due now, with a fresh count
    /// of attempts and age (its earlier attempts stay on record). Durable.
    func retry(_ transferID: String, now: Date) throws(WharfError) -> Transfer

    /// `cancel`: a transfer that is not being sent nor finished becomes cancelled
    /// (durable), then `remove` deletes its file.
    func cancel(_ transferID: String, remove: () throws -> Void) throws(WharfError)

    /// `recover`: every transfer left `sending` by a process that stopped is due again at
    /// `now`. Returns how many. Durable. Run once at start, before anything is claimed.
    func recoverInterrupted(now: Date) throws(WharfError) -> Int

    /// The transfer with this id.
    func transfer(id: String) throws(WharfError) -> Transfer?

    /// The transfers with these ids that exist, read in one transaction.
    func transfers(ids: [String]) throws(WharfError) -> [String: Transfer]
}

/// Transfers claimed for delivery, now `sending`, and the partner generation at the claim
/// (partners read at the same generation are still as they were).
public struct TransferClaim: Sendable {
    public var transfers: [Transfer]
    public var partnerGeneration: Int64

    public init(transfers: [Transfer], partnerGeneration: Int64) {
        self.transfers = transfers
        self.partnerGeneration = partnerGeneration
    }
}

/// How an attempt ended, as the worker records it: the transition it makes.
public enum AttemptOutcome: Sendable, Equatable {
    /// `signature`: the receiver's JWS of `receipt`, verified (a Wharf receiver's).
    case delivered(receipt: String, signature: String? = nil)
    case retry(at: Date, reason: String)
    case dead(reason: String)

    /// Why the attempt failed, in words; `nil` when it delivered.
    public var reason: String? {
        switch self {
        case .delivered: nil
        case .retry(_, let reason), .dead(let reason): reason
        }
    }

    /// The state the attempt left its transfer in, as metrics label it: `delivered`,
    /// `retrying` or `dead`.
    public var label: String { transition.target.rawValue }

    public var transition: Transfer.Transition {
        switch self {
        case .delivered: .deliver
        case .retry: .scheduleRetry
        case .dead: .giveUp
        }
    }
}
