import Foundation
import Logging

/// Removes resumable uploads left untouched for longer than the maximum age, with their
/// bytes: a partner that gave up on one leaves nothing behind for ever.
struct PartialUploadSweep: Sendable {
    let context: InboxContext

    /// How often it looks: often enough that an upload outlives its age by little.
    var interval: Duration {
        let quarter = context.configuration.partialUploadMaxAge / 4
        return max(.milliseconds(200), min(quarter, .seconds(60)))
    }

    func run() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            await sweepOnce()
        }
    }

    /// Removes the uploads past their age that no request holds now; returns how many.
    @discardableResult
    func sweepOnce(now: Date = Date()) async -> Int {
        let (store, spool, active, maxAge, logger) = (
            context.store, context.spool, context.activeUploads, context.configuration.partialUploadMaxAge, context.logger
        )
        do {
            return try await context.threadPool.runIfActive {
                var removed = 0
                for upload in try store.partialUploads() where upload.isAbandoned(maximumAge: maxAge, at: now) {
                    guard let lease = active.tryAcquire(upload.id) else { continue }
                    defer { active.release(lease) }
                    try store.removePartialUpload(id: upload.id)
                    spool.removePartial(id: upload.id)
                    removed += 1
                    logger.notice("abandoned resumable upload removed", metadata: [
                        "partner": "\(upload.partner)", "upload": "\(upload.id)", "file": "\(upload.filename)",
                        "offset": "\(upload.offset)", "last_part_at": "\(upload.updatedAt.utcTimestamp())",
                    ])
                }
                return removed
            }
        } catch {
            logger.error("abandoned resumable uploads could not be removed", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
