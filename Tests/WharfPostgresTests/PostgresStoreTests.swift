import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// The shared registry against a PostgreSQL of the test's own.
@Suite struct PostgresStoreTests {
    static func open(_ server: PostgresServer, node: String = "node-a", lease: Double = 60) throws -> PostgresStore {
        let location = try PostgresLocation(url: server.url, environment: ["PGPASSWORD": server.password])
        return try PostgresStore.open(location, node: node, lease: lease)
    }

    /// Runs `body` on a thread of its own with nodes `node-a` and `node-b` open on `server`.
    static func withNodesAAndB(_ server: PostgresServer, _ body: @escaping @Sendable (PostgresStore, PostgresStore) throws -> Void) async throws {
        try await onThread {
            let a = try open(server, node: "node-a")
            let b = try open(server, node: "node-b")
            defer { a.close(); b.close() }
            try body(a, b)
        }
    }

    /// Opens stores on threads of their own, all at once.
    static func openConcurrently(_ server: PostgresServer, nodes: [String]) throws -> [PostgresStore] {
        try concurrently(nodes.count) { index in try open(server, node: nodes[index]) }
    }

    @Test func nodesStartingTogetherApplyEachMigrationOnce() async throws {
        let server = try await PostgresServer()
        try await onThread {
            let stores = try Self.openConcurrently(server, nodes: ["n1", "n2", "n3"])
            defer { stores.forEach { $0.close() } }
            for store in stores {
                #expect(try store.appliedMigrations() == PostgresMigrations.names)
            }
            #expect(try server.psql("SELECT count(*) FROM wharf_migration") == "\(PostgresMigrations.names.count)")
            // Opening again changes nothing.
            let again = try Self.open(server)
            again.close()
            #expect(try server.psql("SELECT count(*) FROM wharf_migration") == "\(PostgresMigrations.names.count)")
        }
    }

    @Test func aDatabaseANewerWharfMigratedIsRefusedNamingWhatItNeeds() async throws {
        let server = try await PostgresServer()
        try await onThread {
            try Self.open(server).close()
            try server.psql("INSERT INTO wharf_migration (identifier) VALUES ('v99-from-the-future')")
            let error = try #require(throws: WharfError.self) { try Self.open(server) }
            #expect(error.code == .conflict)
            #expect(error.problem.contains("v99-from-the-future"), "\(error)")
            #expect(error.problem.contains(PostgresMigrations.names.last!), "\(error)")
            #expect(error.fix?.contains("newer Wharf") == true)
            #expect(try server.psql("SELECT count(*) FROM wharf_migration") == "\(PostgresMigrations.names.count + 1)")
        }
    }

    @Test func aWrongPasswordIsRefusedWithoutShowingAnyPassword() async throws {
        let server = try await PostgresServer()
        try await onThread {
            let location = try PostgresLocation(url: server.url, environment: ["PGPASSWORD": "not-the-password"])
            let error = try #require(throws: WharfError.self) { try PostgresStore.open(location, node: "n") }
            #expect(error.problem.contains("refused the login"), "\(error)")
            #expect(error.fix?.contains("PGPASSWORD") == true)
            #expect(!error.description.contains("not-the-password"))
            #expect(!error.description.contains(server.password))
            // The password in the URL is not shown either.
            let inURL = try PostgresLocation(url: server.urlWithPassword, environment: [:])
            let store = try PostgresStore.open(inURL, node: "n")
            store.close()
            #expect(!"\(inURL)".contains(server.password))
        }
    }

    @Test func aDatabaseThatIsNotThereIsUnavailableNotAHang() async throws {
        let server = try await PostgresServer()
        try await server.stop()
        try await onThread {
            let location = try PostgresLocation(url: server.url, environment: ["PGPASSWORD": server.password])
            let error = try #require(throws: WharfError.self) { try PostgresStore.open(location, node: "n", timeout: .seconds(3)) }
            #expect(error.code == .unavailable, "\(error)")
            #expect(error.problem.contains("127.0.0.1:\(server.port)/wharf"), "\(error)")
        }
    }

    @Test func nodesRegisterAndRenewTheirHeartbeat() async throws {
        let server = try await PostgresServer()
        try await onThread {
            let a = try Self.open(server, node: "node-a")
            let b = try Self.open(server, node: "node-b")
            defer { a.close(); b.close() }
            let start = try a.databaseTime()
            try a.registerNode(address: "10.0.0.1:8443", version: "1.0", at: start)
            try b.registerNode(address: nil, version: "1.0", at: start)
            try b.heartbeat(at: start.addingTimeInterval(50))
            let nodes = try a.nodes()
            #expect(nodes.map(\.name) == ["node-a", "node-b"])
            #expect(nodes[0].address == "10.0.0.1:8443")
            let later = start.addingTimeInterval(60)
            #expect(nodes[0].isAlive(at: later, window: 30) == false)
            #expect(nodes[1].isAlive(at: later, window: 30))
            // A node restarted under the same name replaces its row.
            try a.registerNode(address: "10.0.0.1:9443", version: "1.1", at: later)
            #expect(try b.nodes().first { $0.name == "node-a" }?.version == "1.1")
        }
    }
}

/// The database going away and coming back under a running store.
@Suite struct PostgresOutageTests {
    @Test func callsDuringAnOutageFailAsUnavailableAndTheStoreRecoversByItself() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        let store = try await onThread {
            let location = try PostgresLocation(url: server.url, environment: ["PGPASSWORD": server.password])
            return try PostgresStore.open(location, node: "node-a", timeout: .seconds(2))
        }
        defer { store.close() }
        _ = try await onThread { try PostgresTransferQueueTests.queue(store, partner: "acme", count: 1) }
        try await server.stop()
        let failure = try await onThread { () -> WharfError? in
            do {
                _ = try PostgresTransferQueueTests.queue(store, partner: "acme", count: 1, at: Date().addingTimeInterval(1))
                return nil
            } catch let error as WharfError {
                return error
            }
        }
        #expect(failure?.code == .unavailable, "\(String(describing: failure))")
        try await server.start()
        // Back without reopening the store: the pool connects again by itself.
        var answered = false
        for _ in 0..<600 where !answered {
            answered = (try? await onThread { try store.partnerGeneration() }) != nil
            if !answered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answered, "the store answers again within a minute")
        let counts = try await onThread { try store.transfers(ids: ["acme-0"]) }
        #expect(counts.count == 1, "what was committed before the outage is there")
        #expect(try server.psql("SELECT count(*) FROM transfer") == "1", "the refused enqueue left no row")
    }
}
