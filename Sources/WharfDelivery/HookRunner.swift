import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import NIOConcurrencyHelpers
import WharfCore
import WharfSpool

/// Dispatches queued hook events: claims those due, runs each hook on its own thread and
/// records how it went (done, again later with backoff, failed for good).
///
/// Hooks run beside uploads and deliveries, never in their way: the events were committed
/// with what they describe, and a hook that hangs or fails only delays its own events (each
/// run is stopped after the hook's timeout; at most `concurrency` run at once).
public struct HookRunner: Service {
    private let store: any HookQueue
    /// Failed reads in a row: logged when they start and end.
    private let readFailures = FailureStreak()
    private let spool: Spool
    private let instruments: any GatewayInstruments
    private let logger: Logger
    private let interval: Duration
    private let concurrency: Int

    public init(
        store: any HookQueue, spool: Spool, instruments: any GatewayInstruments = NoInstruments(), logger: Logger,
        interval: Duration = .milliseconds(500), concurrency: Int = 8
    ) {
        self.instruments = instruments
        self.store = store
        self.spool = spool
        self.logger = logger
        self.interval = interval
        self.concurrency = concurrency
    }

    public func run() async throws {
        let threads = NIOThreadPool(numberOfThreads: concurrency + 1)
        threads.start()
        defer { threads.shutdownGracefully { _ in } }
        let running = NIOLockedValueBox(0)
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let room = concurrency - running.withLockedValue { $0 }
                for (event, hook) in room > 0 ? await claim(limit: room, threads: threads) : [] {
                    running.withLockedValue { $0 += 1 }
                    group.addTask {
                        await dispatch(event, hook: hook, threads: threads)
                        running.withLockedValue { $0 -= 1 }
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// What `wharf deliver --once` does after its deliveries: each event due now is
    /// dispatched once.
    public func runOnce() async {
        let threads = NIOThreadPool(numberOfThreads: concurrency)
        threads.start()
        defer { threads.shutdownGracefully { _ in } }
        let claimed = await claim(limit: 1_000, threads: threads)
        await withTaskGroup(of: Void.self) { group in
            for (index, (event, hook)) in claimed.enumerated() {
                if index >= concurrency { await group.next() }
                group.addTask { await dispatch(event, hook: hook, threads: threads) }
            }
        }
    }

    /// `wharf hook test`: dispatches a sample event of `hook`'s kind once, now, outside the
    /// queue; `nil` when the hook did its part, else what went wrong. Blocks.
    public static func test(_ hook: Hook, partner: String) -> String? {
        let event = HookEvent(
            id: 0, hookID: hook.id, event: hook.event, subject: hook.event == .received ? "r-test" : "t-test", partner: partner,
            filename: "wharf-hook-test.xml", size: 0, sha256: String(repeating: "0", count: 64), storedName: nil,
            reason: hook.event == .dead ? "a test event: nothing died" : nil, occurredAt: Date()
        )
        return HookDispatch.run(event, hook: hook, path: nil)
    }

    private func claim(limit: Int, threads: NIOThreadPool) async -> [(HookEvent, Hook)] {
        let store = store
        do {
            let claimed = try await threads.runIfActive {
                // A run is stopped at its hook's timeout (and killed 5 s later); a minute more
                // leaves room to record it before the lease ends.
                try store.claimHookEvents(now: Date(), margin: 60, limit: limit)
            }
            if readFailures.succeeded() > 0 { logger.notice("hook events can be read again") }
            return claimed
        } catch {
            if readFailures.failed() { logger.error("hook events could not be read", metadata: ["error": "\(error)"]) }
            return []
        }
    }

    private func dispatch(_ event: HookEvent, hook: Hook, threads: NIOThreadPool) async {
        let (store, spool, logger, instruments) = (store, spool, logger, instruments)
        let path = event.storedName.map { "\(spool.inboxDirectory(for: event.partner))/\($0)" }
        do {
            try await threads.runIfActive {
                let failure = HookDispatch.run(event, hook: hook, path: path)
                let now = Date()
                let outcome = failure.map { HookOutcome.afterFailure(of: event, by: hook, error: $0, now: now, random: Double.random(in: 0..<1)) } ?? .done
                try store.finishHookEvent(event.id, outcome: outcome, at: now)
                instruments.hookDispatched(event: event.event.rawValue, outcome: outcome.metricLabel)
                let metadata: Logger.Metadata = ["hook": "\(hook.id)", "event": "\(event.id)", "partner": "\(event.partner)"]
                switch outcome {
                case .done: logger.debug("hook event dispatched", metadata: metadata)
                case .retry(let date, let error):
                    logger.warning("hook failed; it will be tried again", metadata: metadata.merging(["error": "\(error)", "retry_at": "\(date.utcTimestamp())"]) { $1 })
                case .failed(let error):
                    logger.error("hook failed for the last time", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                }
            }
        } catch {
            // The lease runs out and the event is dispatched again: at least once.
            logger.error("a hook event's outcome could not be recorded", metadata: ["event": "\(event.id)", "error": "\(error)"])
        }
    }
}

extension HookOutcome {
    /// The outcome's label in `wharf_hook_dispatches_total`.
    var metricLabel: String {
        switch self {
        case .done: "done"
        case .retry: "retrying"
        case .failed: "failed"
        }
    }
}
