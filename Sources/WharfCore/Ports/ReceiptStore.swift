/// Where receipts for accepted uploads are committed, with their audit events.
///
/// Blocking: call from a thread that may block.
public protocol ReceiptStore: Sendable {
    /// Commits `receipt` unless its partner used its idempotency key before, and records the
    /// audit event `audit` makes of the outcome in the same transaction. When this returns
    /// `.committed`, the receipt and its event are durable (fsynced) and `install` (moving
    /// the file into the inbox) has run; if `install` throws, the receipt is withdrawn (see
    /// `CommitThenInstall`) with an audit event saying so, and the error is rethrown. A
    /// crash between the commit and the move leaves a committed receipt whose file is still
    /// staged, which spool recovery moves into place at the next start.
    func commit(
        _ receipt: Receipt, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit

    /// The receipt with this id, if one is committed.
    func receipt(id: String) throws(WharfError) -> Receipt?

    /// The most recent receipts, newest first, of one partner or of all.
    func receipts(partner: String?, limit: Int) throws(WharfError) -> [Receipt]
}

/// The outcome of committing a receipt.
public enum ReceiptCommit: Sendable, Equatable {
    /// The receipt is committed and its file installed.
    case committed(Receipt)
    /// The partner sent this idempotency key before with the same content: nothing new
    /// was committed, and the caller discards its file.
    case replay(Receipt)
    /// The partner sent this idempotency key before with different content.
    case conflict(Receipt)
}
