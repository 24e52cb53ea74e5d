import Foundation
import Logging
import ServiceLifecycle
import WharfCore
import WharfSpool

/// Feeds the queue from the drop folder and the schedules, once a second.
public struct Intake: Service {
    private let dropFolder: DropFolder
    private let scheduler: Scheduler
    private let interval: Duration

    public init(store: any DeliveryStore, spool: Spool, logger: Logger, interval: Duration = .seconds(1)) {
        self.dropFolder = DropFolder(store: store, spool: spool, logger: logger)
        self.scheduler = Scheduler(store: store, spool: spool, logger: logger)
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            dropFolder.scan()
            scheduler.runDue(now: Date())
            try? await Task.sleep(for: interval)
        }
    }

    /// What `wharf deliver --once` does before delivering: a scan of the drop folder and,
    /// if it found files, a second one `interval` later (a file must be unchanged across
    /// two), and the schedules due now.
    public func runOnce() async {
        dropFolder.scan()
        // A second look only when there is something to look at again.
        if dropFolder.hasFilesWaiting {
            try? await Task.sleep(for: interval)
            dropFolder.scan()
        }
        scheduler.runDue(now: Date())
    }
}
