import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// The store as a service of a gateway's group: its connections end with the group, after
/// the services that use them.
@Suite struct PostgresServiceTests {
    /// Waits for graceful shutdown, then makes one more call to the store, as a delivery
    /// worker finishing its last attempt does.
    struct LastCallAtShutdown: Service {
        let store: PostgresStore
        let answered: Answer

        func run() async throws {
            try? await gracefulShutdown()
            let store = store
            let ok = (try? await onThread { try store.ping() }) != nil
            answered.value.withLock { $0 = ok }
        }
    }

    final class Answer: Sendable {
        let value = Mutex<Bool?>(nil)
    }

    @Test func theGroupClosesTheConnectionsLastWhenItShutsDown() async throws {
        let server = try await PostgresServer()
        let store = try await onThread { try PostgresStoreTests.open(server) }
        let user = LastCallAtShutdown(store: store, answered: Answer())
        let group = ServiceGroup(services: [store, user], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        try await Wait.until(timeout: .seconds(30), "the store's connection to be open") {
            try PostgresTLSTests.connections(server).all > 0
        }
        await group.triggerGracefulShutdown()
        try await running.value
        // The service after the store made its call while the connections were still open…
        #expect(user.answered.value.withLock { $0 } == true)
        // …and then they were closed.
        try await Wait.until(timeout: .seconds(30), "the store's connections to close") {
            try PostgresTLSTests.connections(server).all == 0
        }
    }

    @Test func aPoolThatStopsByItselfStopsTheGroupWithAnError() async throws {
        let server = try await PostgresServer()
        let store = try await onThread { try PostgresStoreTests.open(server) }
        let group = ServiceGroup(services: [store], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        // What the pool's end looks like from the service: its task is over, and nobody
        // asked the group to stop.
        store.running.cancel()
        let error = await #expect(throws: WharfError.self) { try await running.value }
        #expect(error?.code == .unavailable)
        #expect(error?.problem.contains("connection pool") == true, "\(String(describing: error))")
    }
}
