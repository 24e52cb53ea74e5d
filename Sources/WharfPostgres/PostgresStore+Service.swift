import ServiceLifecycle
import WharfCore

/// The store as one of a gateway's services: the connection pool lives as long as the
/// service group, and the group learns when it fails.
///
/// Put it first in the group. A service group stops its services in the reverse of their
/// order, each after the one behind it has finished, so the pool closes after the
/// listener, the delivery worker and the rest have finished their in-flight calls.
extension PostgresStore: Service {
    /// Waits for graceful shutdown or cancellation, then closes every connection. Throws
    /// if the pool stops by itself before that: the gateway cannot run without it.
    public func run() async throws {
        let running = running
        await withTaskCancellationOrGracefulShutdownHandler {
            await running.value
        } onCancelOrGracefulShutdown: {
            running.cancel()
        }
        guard Task.isCancelled || Task.isShuttingDownGracefully else {
            throw WharfError(.unavailable, "the connection pool to PostgreSQL at \(location) stopped", fix: "restart the node")
        }
    }
}
