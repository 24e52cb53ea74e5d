import Foundation

/// Makes the same call for concurrent callers together, one batch at a time: a caller
/// that finds no batch running leads the next one, with up to `limit` calls queued so far,
/// and wakes the others with their outcomes; calls that arrive meanwhile wait for the
/// next batch, which the first of them leads.
///
/// For writes that would otherwise queue behind each other's commit: SQLite's commits,
/// each waiting for an fsync (`GroupCommit`), and a PostgreSQL node's finishes and
/// receipts, each holding the audit chain's head row to its commit (`PostgresStore.finish`,
/// `PostgresStore.commit`). One transaction and one commit serve several writes.
/// `FreshReads` is its counterpart for a read that async callers share.
///
/// Callers block (they run on thread pools, never on an event loop). A batch that throws
/// gives its error to every call in it.
public final class CallBatches<Call, Outcome>: @unchecked Sendable {
    // `queue` and `leading` are guarded by `condition`; an entry's `outcome` is written by
    // the leader before it is woken under the lock, and read by its caller after.
    private let condition = NSCondition()
    private var queue: [Entry] = []
    private var leading = false
    private var batches = 0
    private let limit: Int

    private final class Entry {
        let call: Call
        var outcome: Result<Outcome, WharfError>?

        init(_ call: Call) {
            self.call = call
        }
    }

    public init(limit: Int = .max) {
        precondition(limit > 0, "a batch holds at least one call")
        self.limit = limit
    }

    /// `call`'s outcome, from `run` given the calls of one batch (this one among them) and
    /// returning one outcome for each, in their order.
    public func make(_ call: Call, _ run: ([Call]) throws(WharfError) -> [Outcome]) throws(WharfError) -> Outcome {
        let entry = Entry(call)
        condition.lock()
        queue.append(entry)
        while entry.outcome == nil {
            if leading {
                condition.wait()
                continue
            }
            leading = true
            let batch = Array(queue.prefix(limit))
            queue.removeFirst(batch.count)
            condition.unlock()
            let outcomes: Result<[Outcome], WharfError>
            do throws(WharfError) {
                let made = try run(batch.map(\.call))
                precondition(made.count == batch.count, "a batch gives one outcome for each call")
                outcomes = .success(made)
            } catch {
                outcomes = .failure(error)
            }
            condition.lock()
            for (index, finished) in batch.enumerated() {
                finished.outcome = outcomes.map { $0[index] }
            }
            batches += 1
            leading = false
            condition.broadcast()
        }
        condition.unlock()
        return try entry.outcome!.get()
    }

    /// Batches run so far, and calls waiting for the next one.
    public var counts: (batches: Int, waiting: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (batches, queue.count)
    }
}
