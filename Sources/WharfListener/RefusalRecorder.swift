import Logging
import NIOConcurrencyHelpers
import NIOPosix
import WharfCore

/// Refusals made before a partner is known, counted in a `RefusalTally` and written to the
/// audit trail in one commit every `interval` and when the listener stops, instead of one
/// durable commit each.
final class RefusalRecorder: Sendable {
    private let tally = NIOLockedValueBox(RefusalTally())
    private let store: any AuditTrail
    private let threadPool: NIOThreadPool
    private let logger: Logger

    init(store: any AuditTrail, threadPool: NIOThreadPool, logger: Logger) {
        self.store = store
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Counts `event`, refused for `code`, from `address` (without its port). Does not block.
    func add(_ event: AuditEvent, address: String, code: String) {
        tally.withLockedValue { $0.add(event, address: address, code: code) }
    }

    /// Writes what was counted.
    func flush() async {
        let events = tally.withLockedValue { $0.drain() }
        guard !events.isEmpty else { return }
        let (store, logger) = (store, logger)
        // Not cancelled with the task: the last flush runs as the listener stops.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            threadPool.submit { _ in
                do {
                    try store.record(contentsOf: events)
                } catch {
                    logger.error("refusals not recorded in the audit trail", metadata: ["count": "\(events.count)", "error": "\(error)"])
                }
                done.resume()
            }
        }
    }

    /// Flushes every `interval` until cancelled.
    func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await flush()
        }
    }
}
