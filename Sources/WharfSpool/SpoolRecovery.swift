import Logging
import WharfCore

/// Puts the spool and the registry back in step after a stop or a crash. Run it at start,
/// before anything receives or delivers (`wharf serve`, `wharf deliver --once`).
///
/// The registry is committed first and files move after, so a crash can leave: a
/// committed upload or transfer whose file is still staged in `tmp/` (moved into place
/// now), a staged file nothing committed (removed: never acknowledged), and a delivered
/// or cancelled transfer whose file is still in `outgoing/` (moved to `sent/`, or removed).
public enum SpoolRecovery {
    /// - Parameter partialUploads: put resumable uploads back in step too. Not on a spool
    ///   several nodes share: another node may be receiving one of them now.
    public static func run(
        store: any ReceiptStore & TransferQueue & PartialUploadStore, spool: Spool, partialUploads: Bool = true, logger: Logger
    ) throws(WharfError) {
        let staged = try spool.recover(
            committedReceipt: { id throws(WharfError) in try store.receipt(id: id) },
            committedTransfer: { id throws(WharfError) in try store.transfer(id: id) != nil }
        )
        var finished = 0
        let outgoing = spool.outgoingIDs()
        let transfers = try store.transfers(ids: outgoing)
        for id in outgoing {
            guard let transfer = transfers[id] else {
                logger.warning("a queued file has no transfer; it is left in place", metadata: ["file": "\(spool.outgoingPath(id))"])
                continue
            }
            switch transfer.state {
            case .delivered:
                do {
                    try spool.moveToSent(transfer, receipt: transfer.receipt ?? "")
                    finished += 1
                } catch {
                    logger.warning("a delivered file cannot be moved to sent/; it is left in outgoing/", metadata: [
                        "transfer": "\(id)", "error": "\(error)",
                    ])
                }
            case .cancelled:
                spool.removeOutgoing(id)
                finished += 1
            default:
                break
            }
        }
        let partial = partialUploads ? try recoverPartialUploads(store: store, spool: spool, logger: logger) : 0
        report(staged, logger: logger)
        if !staged.completed.isEmpty || !staged.removed.isEmpty || finished > 0 || partial > 0 {
            logger.notice("spool recovered", metadata: [
                "completed": "\(staged.completed.count + partial)", "removed_unacknowledged": "\(staged.removed.count)",
                "finished_outgoing": "\(finished)",
            ])
        }
    }

    /// Puts the files `spool` staged back in step with the registry: what a dead node of
    /// several left in `tmp/NODE/`, recovered by the leader (`spool.asNode(dead)`).
    public static func recoverStaged(store: any ReceiptStore & TransferQueue, spool: Spool, logger: Logger) throws(WharfError) {
        let staged = try spool.recover(
            committedReceipt: { id throws(WharfError) in try store.receipt(id: id) },
            committedTransfer: { id throws(WharfError) in try store.transfer(id: id) != nil }
        )
        report(staged, logger: logger)
        if !staged.completed.isEmpty || !staged.removed.isEmpty {
            logger.notice("a dead node's staged files recovered", metadata: [
                "node": "\(spool.node.map(\.rawValue) ?? "")", "completed": "\(staged.completed.count)",
                "removed_unacknowledged": "\(staged.removed.count)",
            ])
        }
    }

    private static func report(_ staged: Spool.Recovery, logger: Logger) {
        for file in staged.quarantined {
            logger.warning("a committed file could not be put in place; moved to spool/quarantine/", metadata: [
                "file": "\(file.name)", "reason": "\(file.reason)",
            ])
        }
    }

    /// Puts resumable uploads back in step: a completed one whose file was not yet moved
    /// goes into the inbox; a file is cut back to its recorded offset (bytes past it were
    /// never reported); a file without a record, or a record whose file is gone or
    /// shorter than its offset (its state is lost, so it can no longer be resumed), is
    /// removed. Returns how many completed uploads were moved into place.
    static func recoverPartialUploads(
        store: any ReceiptStore & PartialUploadStore, spool: Spool, logger: Logger
    ) throws(WharfError) -> Int {
        var completed = 0
        var recorded = Dictionary(uniqueKeysWithValues: try store.partialUploads().map { ($0.id, $0) })
        for id in spool.partialIDs() {
            let upload = recorded.removeValue(forKey: id)
            if let receipt = try store.receipt(id: id) {
                do {
                    try spool.installPartial(id: id, receipt: receipt)
                } catch {
                    // Left where it is, recorded, for the next start: it must not keep this one from starting.
                    logger.warning("a completed resumable upload could not be moved into the inbox; it stays in spool/partial/", metadata: [
                        "upload": "\(id)", "partner": "\(receipt.partner)", "reason": "\(error)",
                    ])
                    continue
                }
                try store.removePartialUpload(id: id)
                completed += 1
            } else if let upload {
                do {
                    try spool.openPartial(id: id, at: upload.offset).close()
                } catch {
                    logger.warning("a resumable upload lost its bytes and was removed", metadata: [
                        "upload": "\(id)", "partner": "\(upload.partner)", "reason": "\(error)",
                    ])
                    spool.removePartial(id: id)
                    try store.removePartialUpload(id: id)
                }
            } else {
                spool.removePartial(id: id)
            }
        }
        for upload in recorded.values {
            // Completed and moved before a crash, or its file removed by hand.
            try store.removePartialUpload(id: upload.id)
        }
        return completed
    }
}
