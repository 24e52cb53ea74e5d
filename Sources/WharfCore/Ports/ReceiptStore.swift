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
    ///
    /// With `partners`, only while the partner generation is still that one, checked in the
    /// same transaction: if the partners changed since the upload was authorized (a partner
    /// disabled, a certificate revoked), it writes nothing, does not install, and returns
    /// `nil`, for the caller to decide again from the partners as they are now. A listener
    /// thus confirms its decision and commits in one trip to the store.
    func commit(
        _ receipt: Receipt, whilePartnersAt partners: Int64?, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit?

    /// The receipt with this id, if one is committed.
    func receipt(id: String) throws(WharfError) -> Receipt?

    /// The most recent receipts, newest first, of one partner or of all.
    func receipts(partner: String?, limit: Int) throws(WharfError) -> [Receipt]
}

extension ReceiptStore {
    /// Commits `receipt` whatever the partners are now (see `commit(_:whilePartnersAt:audit:install:)`).
    public func commit(
        _ receipt: Receipt, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit {
        guard let outcome = try commit(receipt, whilePartnersAt: nil, audit: audit, install: install) else {
            preconditionFailure("a commit without a partner generation to hold to cannot find it moved")
        }
        return outcome
    }
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
