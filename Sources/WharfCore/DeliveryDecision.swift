import Foundation

/// What the delivery worker records for a claimed transfer, decided without I/O: the
/// worker gathers the facts (the partner as the store has it, whether the file is there,
/// what libcurl reported, the clock, a random number), asks here, and records the answer
/// with one store call.
public enum DeliveryDecision {
    /// Before an attempt: what it needs, or why it cannot be made.
    public enum Start: Sendable, Equatable {
        /// Send the file to `url`.
        case attempt(partner: Partner, url: OutboundURL)
        /// The transfer cannot be attempted at all: record it dead (`kill`) with the reason.
        case kill(reason: String)
        /// Not yet: give the claim back (`release`), due again at `until`, with the reason.
        case wait(until: Date, reason: String)
    }

    /// How long after a transfer was queued its file may still be on its way into
    /// `outgoing/`: its sender commits the transfer first and moves the file after, and
    /// another process (a node woken by the commit, a worker's poll) may claim it between.
    public static let fileArrivalGrace: TimeInterval = 60
    /// How soon a transfer whose file is not there yet is tried again.
    public static let fileArrivalRetry: TimeInterval = 1

    /// Whether `transfer` can be attempted at `now`, given its partner as the store has it
    /// now (`nil`: removed) and whether its file is in the outgoing directory.
    public static func start(
        _ transfer: Transfer, partner: Partner?, fileExists: Bool, outgoingDirectory: String, now: Date
    ) -> Start {
        guard let partner else {
            return .kill(reason: "partner '\(transfer.partner)' no longer exists")
        }
        guard let url = partner.outbound.url else {
            return .kill(reason: "partner '\(partner.name)' has no delivery URL; set one with `wharf partner update \(partner.name) --url URL`, then `wharf transfers retry \(transfer.id)`")
        }
        guard fileExists else {
            if now.timeIntervalSince(transfer.queuedAt) < fileArrivalGrace {
                return .wait(until: now.addingTimeInterval(fileArrivalRetry), reason: "its file is not in \(outgoingDirectory) yet")
            }
            return .kill(reason: "its file is missing from \(outgoingDirectory)")
        }
        return .attempt(partner: partner, url: url)
    }

    /// The outcome to record after an attempt of `transfer` to `partner` ended at `now` with
    /// `result`: delivered, a retry at a time drawn with `random` (in `0..<1`, the jitter)
    /// under the partner's policy over `defaults`, or dead with the reason.
    public static func outcome(
        of result: DeliveryResult, for transfer: Transfer, partner: Partner, defaults: RetryPolicy,
        now: Date, random: Double
    ) -> AttemptOutcome {
        switch DeliveryVerdict.judge(result, expectedSHA256: transfer.sha256) {
        case .delivered:
            return .delivered(receipt: result.body, signature: result.receiptSignature)
        case .permanent(let why):
            return .dead(reason: why)
        case .transient(let why):
            let policy = partner.outbound.retryPolicy(overriding: defaults)
            switch policy.afterTransientFailure(
                attempts: transfer.attemptsSinceQueued + 1, createdAt: transfer.queuedAt, now: now,
                retryAfter: result.retryAfter, random: random
            ) {
            case .retry(let date): return .retry(at: date, reason: why)
            case .giveUp(let giveUp): return .dead(reason: "\(why); \(giveUp)")
            }
        }
    }
}
