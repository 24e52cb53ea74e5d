import Foundation
import WharfCore
import WharfSpool

/// Puts files in the outbound queue, for `wharf send`, the drop folder and schedules.
///
/// A file is staged in `spool/tmp/` (copied, or moved when it may be taken), fsynced,
/// then recorded as a queued transfer and renamed to `spool/outgoing/` in one transaction.
/// If recording fails, a moved file goes back where it was: nothing is lost.
public struct Outbox: Sendable {
    let store: any DeliveryStore
    let spool: Spool

    public init(store: any DeliveryStore, spool: Spool) {
        self.store = store
        self.spool = spool
    }

    /// Queues the file at `path` for `partner` under its own name.
    ///
    /// - Parameters:
    ///   - move: take the file (the drop folder, schedules without `--keep`) instead of copying it.
    ///   - schedule: the schedule queuing it with `--keep`, which remembers what it sent;
    ///     a file whose content it sent last time is not queued again (`nil` is returned).
    @discardableResult
    public func queue(_ path: String, for partner: PartnerName, move: Bool = false, schedule: Int64? = nil) throws(WharfError) -> Transfer? {
        let filename = try InboundFileName((path as NSString).lastPathComponent)
        let id = Transfer.newID()
        let staged: Spool.StagedOutgoing
        var copied = true
        if move {
            (staged, copied) = try spool.stageOutgoing(moving: path, id: id)
        } else {
            staged = try spool.stageOutgoing(copying: path, id: id)
        }
        if let schedule, try store.lastSent(by: schedule, path: path) == staged.sha256 {
            unlink(staged.path)
            return nil
        }
        let transfer = Transfer(id: id, partner: partner.rawValue, filename: filename.rawValue, size: staged.size, sha256: staged.sha256)
        do throws(WharfError) {
            let install = { () throws -> Void in try spool.installOutgoing(staged, id: id) }
            try store.enqueue(transfer, sentBy: schedule.map { (id: $0, path: path) }, install: install)
        } catch {
            if move && !copied { rename(staged.path, path) } else { unlink(staged.path) }
            throw error
        }
        if move && copied { unlink(path) }
        return transfer
    }
}
