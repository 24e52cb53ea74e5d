import Foundation
import PostgresNIO
import WharfCore

/// Wake-ups between nodes: a transfer queued on any node is announced on the `wharf_queue`
/// channel (`NOTIFY` in the enqueue's transaction, so only committed transfers are), and
/// every node's worker can wait on `queueWakeups()` instead of its next poll. Polling stays
/// the fallback: a notification lost while a node was not listening only delays it.
extension PostgresStore {
    static let queueChannel = "wharf_queue"

    /// Announces, in the transaction of `connection`, that `partner` has a transfer due.
    static func announceQueued(partner: String, _ connection: PostgresConnection) async throws {
        try await connection.run("SELECT pg_notify(\(queueChannel), \(partner))")
    }

    /// One element for every transfer queued on any node, and one each time the listening
    /// connection is made (again): what was announced while it was down is not heard, so
    /// the worker looks at the queue then. The connection is one of its own, outside the
    /// pool, and made again after a failure (every second, then up to every five); the
    /// stream ends when it is dropped or the store closes.
    public func queueWakeups() -> AsyncStream<Void> {
        let configuration = try? location.connectionConfiguration()
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let task = Task.detached {
            guard let configuration else { return continuation.finish() }
            var delay = 1.0
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Self.quiet)
                    do {
                        try await connection.listen(on: Self.queueChannel) { notifications in
                            delay = 1
                            continuation.yield()
                            for try await _ in notifications { continuation.yield() }
                        }
                    } catch {}
                    try? await connection.close()
                } catch {}
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 5)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
