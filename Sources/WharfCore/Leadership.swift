import Foundation

/// What a node decides about leading: the one node of a gateway that runs schedules,
/// prunes, and rescues expired claims and dead nodes' files. The lease itself is a row in
/// the shared registry (taken when free or expired, renewed by its holder); this decides
/// when to try for it, and whether this node may act as leader now.
///
/// A node leads only while its lease has `margin` left to run: it stops (steps down) that
/// long before the lease expires, so that when another node takes an expired lease the
/// old leader has already stopped, with the nodes' clocks up to `margin` apart. A renewal
/// that fails (the database is unreachable) changes nothing: the node goes on leading
/// until that point, then stops.
public struct Leadership: Sendable, Equatable {
    /// How long a lease taken or renewed lasts.
    public let duration: Double
    /// How early before the lease expires a leader stops.
    public let margin: Double
    /// Until when this node may act as leader; `nil` while it does not lead.
    public private(set) var leadsUntil: Date?

    public init(duration: Double = 15, margin: Double = 5) {
        precondition(duration > 2 * margin && margin > 0, "a lease must outlast twice its margin")
        self.duration = duration
        self.margin = margin
    }

    /// Whether this node may do a leader's work at `now`.
    public func leads(at now: Date) -> Bool {
        leadsUntil.map { now < $0 } ?? false
    }

    /// When to try for the lease next, having last tried at `now`: a leader renews a third
    /// of the way into what it may still lead for; a follower tries every `margin`.
    public func nextTry(after now: Date) -> Date {
        guard let leadsUntil, now < leadsUntil else { return now.addingTimeInterval(margin) }
        return now.addingTimeInterval(max(0.5, leadsUntil.timeIntervalSince(now) / 3))
    }

    /// Records an attempt, started at `start`, to take or renew the lease: `held` is
    /// whether the registry gave it. Counting from the attempt's start keeps a slow answer
    /// from stretching the lease past what the registry recorded.
    public mutating func attempted(at start: Date, held: Bool) {
        leadsUntil = held ? start.addingTimeInterval(duration - margin) : nil
    }

    /// Records that an attempt could not reach the registry: nothing is known, so this
    /// node leads (if it did) until its margin, and stops then.
    public mutating func attemptFailed() {}

    /// Records that this node gave the lease up (`stepDown`, when it stops).
    public mutating func steppedDown() {
        leadsUntil = nil
    }
}
