import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import WharfCore

/// The per-address defender, as the listener runs it: offences are scored in a
/// `DefenderLedger`, a banned address's connections are closed as they are accepted (before
/// any TLS), and bans are stored so that `wharf defender list` and `unban` see and change
/// them. Stored bans are read back every `refreshInterval`: an unban, or a ban made by
/// another node, takes effect within it.
final class AddressDefender: Sendable {
    private let enabled: Bool
    private let allowed: [AddressRange]
    private let ledger: NIOLockedValueBox<DefenderLedger>
    private let store: any BanList & AuditTrail
    private let threadPool: NIOThreadPool
    /// Failed reads in a row: logged when they start and end.
    private let readFailures = FailureStreak()
    private let logger: Logger

    init(configuration: ListenerConfiguration, store: any BanList & AuditTrail, threadPool: NIOThreadPool, logger: Logger) {
        self.enabled = configuration.defender
        self.allowed = configuration.defenderAllow
        self.ledger = NIOLockedValueBox(DefenderLedger(policy: configuration.defenderPolicy))
        self.store = store
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Whether connections from `address` are closed at accept. Does not block.
    func isBanned(_ address: String) -> Bool {
        guard enabled else { return false }
        let now = Date()
        return ledger.withLockedValue { $0.isBanned(address, at: now) }
    }

    /// Scores `offence` for `address`; a ban it brings about is logged, audited and
    /// stored on the thread pool. Does not block.
    func record(_ offence: Offence, from address: String) {
        guard enabled, !allowed.contains(where: { $0.contains(address) }) else { return }
        let now = Date()
        guard let ban = ledger.withLockedValue({ $0.score(offence, from: address, at: now) }) else { return }
        let minutes = Int(ban.until.timeIntervalSince(ban.since) / 60)
        logger.notice("address banned", metadata: [
            "remote": "\(address)", "until": "\(ban.until.utcTimestamp())", "times": "\(ban.times)", "reason": "\(offence.rawValue)",
        ])
        let event = AuditEvent(
            at: now, kind: .refusal, outcome: .refused, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: address,
            detail: "address banned for \(minutes) minutes (ban \(ban.times)): \(ledger.withLockedValue { $0.policy.threshold }) points of offences, the last \(offence.rawValue)"
        )
        let (store, logger) = (store, logger)
        threadPool.submit { state in
            guard case .active = state else { return }
            do {
                try store.saveBan(ban)
                try store.record(event)
            } catch {
                logger.error("the ban could not be stored", metadata: ["remote": "\(address)", "error": "\(error)"])
            }
        }
    }

    /// Reads the stored bans into the ledger.
    func refresh() async {
        guard enabled else { return }
        let store = store
        do {
            let stored = try await threadPool.runIfActive { try store.addressBans() }
            let now = Date()
            ledger.withLockedValue { $0.merge(stored: stored, at: now) }
            if readFailures.succeeded() > 0 { logger.notice("the stored bans can be read again") }
        } catch {
            if readFailures.failed() { logger.warning("the stored bans could not be read", metadata: ["error": "\(error)"]) }
        }
    }

    /// Refreshes every `interval` until cancelled.
    func run(every interval: Duration) async {
        guard enabled else { return }
        while !Task.isCancelled {
            await refresh()
            try? await Task.sleep(for: interval)
        }
    }
}
