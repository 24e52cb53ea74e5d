import Foundation

/// Refusals made before a partner is known (failed handshakes, certificates of no partner,
/// requests that are not HTTP), counted per address, status and reason code in each
/// minute, and written as one audit event per count. A client that connects ten thousand
/// times a minute costs a few rows a minute, not ten thousand commits.
public struct RefusalTally: Sendable {
    struct Key: Hashable, Sendable {
        let address: String
        let status: Int?
        let code: String
        let minute: Int64
    }

    struct Count: Sendable {
        /// The first refusal of the count, as it would have been recorded alone.
        let first: AuditEvent
        var last: Date
        var count: Int
    }

    /// Counts kept at once; past it, refusals are counted under the address `other` (an
    /// attack from many addresses still costs one row per reason and minute).
    public let capacity: Int
    private var counts: [Key: Count] = [:]

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    public var isEmpty: Bool { counts.isEmpty }

    /// Counts `event`, a refusal from `address` (without its port) for the reason `code`.
    public mutating func add(_ event: AuditEvent, address: String, code: String) {
        let minute = Int64((event.at.timeIntervalSince1970 / 60).rounded(.down))
        var key = Key(address: address, status: event.status, code: code, minute: minute)
        if counts[key] == nil && counts.count >= capacity {
            key = Key(address: "other", status: event.status, code: code, minute: minute)
        }
        if counts[key] != nil {
            counts[key]!.count += 1
            counts[key]!.last = max(counts[key]!.last, event.at)
        } else {
            counts[key] = Count(first: event, last: event.at, count: 1)
        }
    }

    /// The audit events for what was counted, oldest first, and an empty tally. A count of
    /// one is the refusal as it was; a count of more says how many and until when, with
    /// the first one's subject and detail.
    public mutating func drain() -> [AuditEvent] {
        let drained = counts.sorted { ($0.value.first.at, $0.key.address) < ($1.value.first.at, $1.key.address) }
        counts = [:]
        return drained.map { key, count in
            let first = count.first
            guard count.count > 1 else { return first }
            let detail = "\(first.detail ?? key.code) (\(count.count) times from this address until \(count.last.utcTimestamp()))"
            return AuditEvent(
                at: first.at, kind: first.kind, outcome: first.outcome, status: first.status, partner: nil,
                subject: first.subject, fingerprint: first.fingerprint, remoteAddress: key.address, detail: detail
            )
        }
    }
}
