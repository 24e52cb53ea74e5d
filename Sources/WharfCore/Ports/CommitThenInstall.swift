/// The order every durable record with a file behind it follows: commit the row, then move
/// the file into place, and withdraw the row if the move fails.
///
/// A crash after the commit and before the move leaves a committed row whose file is still
/// staged; spool recovery finishes the move at the next start. A crash before the commit
/// leaves a staged file nothing refers to, which recovery removes. Receipts, queued
/// transfers, deliveries and partner bundles all go this way.
public enum CommitThenInstall {
    /// Runs `commit`, then `install` with what it committed; if `install` throws, runs
    /// `withdraw` (best effort: its own failure is the lesser problem) and rethrows the
    /// install's error as a `WharfError`.
    @discardableResult
    public static func run<Committed>(
        commit: () throws(WharfError) -> Committed,
        install: (Committed) throws -> Void,
        withdraw: (Committed) throws -> Void
    ) throws(WharfError) -> Committed {
        let committed = try commit()
        do {
            try install(committed)
        } catch {
            try? withdraw(committed)
            throw error as? WharfError ?? WharfError(.fileSystem, "the file could not be moved into place: \(error)")
        }
        return committed
    }
}
