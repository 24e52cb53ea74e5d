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
    public static func run(store: any ReceiptStore & TransferQueue, spool: Spool, logger: Logger) throws(WharfError) {
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
        for file in staged.quarantined {
            logger.warning("a committed file could not be put in place; moved to spool/quarantine/", metadata: [
                "file": "\(file.name)", "reason": "\(file.reason)",
            ])
        }
        if !staged.completed.isEmpty || !staged.removed.isEmpty || finished > 0 {
            logger.notice("spool recovered", metadata: [
                "completed": "\(staged.completed.count)", "removed_unacknowledged": "\(staged.removed.count)",
                "finished_outgoing": "\(finished)",
            ])
        }
    }
}
