import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import WharfCore
import WharfSpool

/// Feeds the queue from the drop folder and the schedules, once a second.
///
/// Of several nodes, only the leader does (`leads`): two nodes scanning one drop folder
/// would queue a file twice.
public struct Intake: Service {
    private let dropFolder: DropFolder
    private let scheduler: Scheduler
    private let interval: Duration
    private let leads: @Sendable () -> Bool

    /// - Parameter leads: whether this node may feed the queue now (always, for one node).
    public init(
        store: any DeliveryStore, spool: Spool, logger: Logger, interval: Duration = .seconds(1), leads: @escaping @Sendable () -> Bool = { true }
    ) {
        self.dropFolder = DropFolder(store: store, spool: spool, logger: logger)
        self.scheduler = Scheduler(store: store, spool: spool, logger: logger)
        self.interval = interval
        self.leads = leads
    }

    public func run() async throws {
        let (dropFolder, scheduler, leads) = (dropFolder, scheduler, leads)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Scans and queues block (the file system, the registry): on the thread pool.
            _ = try? await NIOThreadPool.singleton.runIfActive {
                guard leads() else { return }
                dropFolder.scan()
                scheduler.runDue(now: Date())
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// What `wharf deliver --once` does before delivering: a scan of the drop folder and,
    /// if it found files, a second one `interval` later (a file must be unchanged across
    /// two), and the schedules due now.
    public func runOnce() async {
        let (dropFolder, scheduler) = (dropFolder, scheduler)
        _ = try? await NIOThreadPool.singleton.runIfActive { dropFolder.scan() }
        // A second look only when there is something to look at again.
        if dropFolder.hasFilesWaiting {
            try? await Task.sleep(for: interval)
            _ = try? await NIOThreadPool.singleton.runIfActive { dropFolder.scan() }
        }
        _ = try? await NIOThreadPool.singleton.runIfActive { scheduler.runDue(now: Date()) }
    }
}
