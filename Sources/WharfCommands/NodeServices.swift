import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import WharfCore
import WharfSpool

/// Whether this node leads its gateway now: what the leader's lease loop (`LeaderDuties`)
/// last learned, as `Leadership` decides. One node on SQLite always leads.
final class LeaderGate: Sendable {
    private let state: Mutex<Leadership>?

    /// A gate that is always open: one node.
    static let alone = LeaderGate(leadership: nil)

    init(leadership: Leadership?) {
        state = leadership.map { Mutex($0) }
    }

    func leads(at now: Date = Date()) -> Bool {
        state?.withLock { $0.leads(at: now) } ?? true
    }

    func change<T>(_ body: (inout Leadership) -> T) -> T? {
        state?.withLock { body(&$0) }
    }
}

/// Renews this node's heartbeat row every `interval`, so that `wharf nodes list` and the
/// leader can tell it is alive.
struct NodeHeartbeat: Service {
    let nodes: any NodeRegistry
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let failing = Mutex(false)
        let (nodes, logger) = (nodes, logger)
        await repeatUntilShutdown(every: interval) {
            do {
                try nodes.heartbeat(at: Date())
                if failing.withLock({ $0 }) {
                    failing.withLock { $0 = false }
                    logger.notice("the heartbeat reaches the registry again")
                }
            } catch {
                // Said once per outage, not every few seconds.
                if !failing.withLock({ $0 }) {
                    failing.withLock { $0 = true }
                    logger.warning("the heartbeat cannot be written", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

/// Of several nodes, takes and renews the leader's lease, and while this node leads does
/// what must happen once per gateway: it takes back claims whose lease ran out, and puts
/// dead nodes' staged uploads back in step (`Spool.asNode`). The schedules and the drop
/// folder run on the leader too (`Intake`, through `gate`). It steps down at shutdown.
struct LeaderDuties: Service {
    let nodes: any NodeRegistry
    let store: any HomeStore
    let spool: Spool
    let gate: LeaderGate
    /// A node whose heartbeat is older than this many seconds is dead.
    let deadAfter: Double
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastRescue = Date.distantPast
            while !Task.isCancelled {
                let started = Date()
                let held: Bool? = try? await NIOThreadPool.singleton.runIfActive { [nodes, gate] in
                    let duration = gate.change { $0.duration } ?? 15
                    return try nodes.lead(now: started, for: duration)
                }
                let wasLeading = gate.leads(at: started)
                if let held {
                    gate.change { $0.attempted(at: started, held: held) }
                } else {
                    gate.change { $0.attemptFailed() }
                }
                let leads = gate.leads()
                if leads != wasLeading {
                    logger.notice(leads ? "this node leads the gateway" : "this node no longer leads the gateway", metadata: ["node": "\(nodes.nodeName)"])
                }
                if leads, Date().timeIntervalSince(lastRescue) >= nodes.claimLease / 3 {
                    lastRescue = Date()
                    _ = try? await NIOThreadPool.singleton.runIfActive { rescue() }
                }
                let next = gate.change { $0.nextTry(after: Date()) } ?? Date().addingTimeInterval(5)
                try? await Task.sleep(for: .seconds(max(0.1, next.timeIntervalSinceNow)))
            }
        }
        _ = try? await NIOThreadPool.singleton.runIfActive { [nodes] in try nodes.stepDown() }
        gate.change { $0.steppedDown() }
    }

    /// Claims whose lease ran out go back to the queue; dead nodes' staged files are
    /// recovered as their node would have at its next start. Blocking.
    func rescue() {
        do {
            let rescued = try nodes.rescueExpiredClaims(now: Date())
            if rescued > 0 { logger.notice("claims whose lease ran out are due again", metadata: ["count": "\(rescued)"]) }
            let now = Date()
            for node in try nodes.nodes() where node.name != nodes.nodeName && !node.isAlive(at: now, window: deadAfter) {
                guard let name = try? NodeName(node.name) else { continue }
                try SpoolRecovery.recoverStaged(store: store, spool: spool.asNode(name), logger: logger)
            }
        } catch {
            logger.warning("the leader's rescue did not finish", metadata: ["error": "\(error)"])
        }
    }
}
