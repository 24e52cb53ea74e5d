import Foundation

/// What a node of a gateway of several needs from the registry they share: its row and
/// heartbeat, the leader's lease, taking back claims whose lease ran out, and wake-ups
/// when another node queues a transfer. Only the PostgreSQL store has it; a home on
/// SQLite is one node, which leads by itself.
///
/// Blocking but for `queueWakeups`: call from a thread that may block.
public protocol NodeRegistry: Sendable {
    /// This node's name: the owner of its claims and of its row.
    var nodeName: String { get }
    /// How long a claim holds, in seconds, unless its owner renews it.
    var claimLease: Double { get }
    /// Records this node as started at `now` (replacing a row of an earlier run of the
    /// same name).
    func registerNode(address: String?, version: String, at now: Date) throws(WharfError)
    /// Renews this node's heartbeat.
    func heartbeat(at now: Date) throws(WharfError)
    /// Every node registered, by name.
    func nodes() throws(WharfError) -> [NodeRecord]
    /// Takes or renews the leader's lease for `duration` seconds from `now`; whether this
    /// node holds it.
    func lead(now: Date, for duration: Double) throws(WharfError) -> Bool
    /// Gives the lease up, if this node holds it.
    func stepDown() throws(WharfError)
    /// The node holding the leader's lease, and until when; `nil` if none ever took it
    /// or the last one stepped down.
    func leader() throws(WharfError) -> (node: String, until: Date)?
    /// Claims whose lease ran out (their node died or lost the database) are due again.
    /// Returns how many.
    func rescueExpiredClaims(now: Date) throws(WharfError) -> Int
    /// Yields when a transfer may have been queued by any node (and on each reconnect).
    func queueWakeups() -> AsyncStream<Void>
}

/// A node of the gateway as the shared registry knows it.
public struct NodeRecord: Sendable, Equatable {
    public var name: String
    /// Where its listener answers, as it reported it.
    public var address: String?
    public var version: String
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(name: String, address: String?, version: String, startedAt: Date, heartbeatAt: Date) {
        self.name = name
        self.address = address
        self.version = version
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }

    /// Whether it renewed its heartbeat within `window` seconds of `now`.
    public func isAlive(at now: Date, window: Double) -> Bool {
        now.timeIntervalSince(heartbeatAt) <= window
    }
}
