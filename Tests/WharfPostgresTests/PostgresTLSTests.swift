import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// `sslmode` against a real PostgreSQL that speaks TLS and refuses every TCP connection
/// that does not (`hostssl` only): a store that opens there reached it encrypted.
@Suite struct PostgresTLSTests {
    static func location(_ server: PostgresServer, host: String = "127.0.0.1", _ parameters: String) throws -> PostgresLocation {
        try PostgresLocation(
            url: "postgresql://postgres@\(host):\(server.port)/\(server.database)?\(parameters)",
            environment: ["PGPASSWORD": server.password]
        )
    }

    /// The TCP connections the server has open now, and how many of them are TLS.
    static func connections(_ server: PostgresServer) throws -> (all: Int, encrypted: Int) {
        let counts = try server.psql("""
            SELECT count(*), count(*) FILTER (WHERE ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
            WHERE client_addr IS NOT NULL
            """).split(separator: "|").compactMap { Int($0) }
        return (counts.first ?? -1, counts.last ?? -1)
    }

    @Test func requireEncryptsAndAClearTextConnectionIsRefused() async throws {
        let server = try await PostgresServer(tls: .init(names: ["127.0.0.1"]))
        try await onThread {
            let store = try PostgresStore.open(try Self.location(server, "sslmode=require"), node: "n1")
            defer { store.close() }
            try store.ping()
            let (all, encrypted) = try Self.connections(server)
            #expect(all > 0)
            #expect(encrypted == all)

            let error = try #require(throws: WharfError.self) {
                try PostgresStore.open(try Self.location(server, "sslmode=disable"), node: "n2")
            }
            #expect(error.problem.contains("refused the login"), "\(error)")
            #expect(error.problem.contains("no encryption"), "\(error)")
            #expect(error.fix?.contains("sslmode=require") == true, "\(error)")
            #expect(!error.description.contains(server.password))
        }
    }

    @Test func verifyFullAcceptsTheServerItsCAIssuedForThatName() async throws {
        let server = try await PostgresServer(tls: .init(names: ["127.0.0.1"]))
        try await onThread {
            let store = try PostgresStore.open(
                try Self.location(server, "sslmode=verify-full&sslrootcert=\(server.caPath)"), node: "n1"
            )
            defer { store.close() }
            try store.ping()
            let (all, encrypted) = try Self.connections(server)
            #expect(all > 0)
            #expect(encrypted == all)
        }
    }

    @Test func verifyFullRefusesACertificateAnotherCAIssuedOrTheSystemDoesNotTrust() async throws {
        let server = try await PostgresServer(tls: .init(names: ["127.0.0.1"]))
        let foreign = try TemporaryDirectory("wharf-foreign-ca")
        try #require(Command.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", foreign.file("ca.key"), "-out", foreign.file("ca.pem"), "-subj", "/CN=Another CA", "-days", "2",
        ]).succeeded)
        try await onThread {
            for parameters in ["sslmode=verify-full&sslrootcert=\(foreign.file("ca.pem"))", "sslmode=verify-full"] {
                let error = try #require(throws: WharfError.self) {
                    try PostgresStore.open(try Self.location(server, parameters), node: "n1")
                }
                #expect(error.code == .cryptography, "\(parameters): \(error)")
                #expect(error.problem.contains("certificate"), "\(parameters): \(error)")
                #expect(error.fix?.contains("sslrootcert") == true, "\(parameters): \(error)")
            }
            // Nothing got as far as logging in.
            #expect(try Self.connections(server).all == 0)
        }
    }

    @Test func verifyFullRefusesACertificateIssuedForAnotherName() async throws {
        // The certificate names another host only (an address it names would match the
        // address connected to, whatever the URL's host).
        let server = try await PostgresServer(tls: .init(names: ["db.example.net"]))
        try await onThread {
            let error = try #require(throws: WharfError.self) {
                try PostgresStore.open(
                    try Self.location(server, host: "localhost", "sslmode=verify-full&sslrootcert=\(server.caPath)"), node: "n1"
                )
            }
            #expect(error.code == .cryptography, "\(error)")
            #expect(error.problem.contains("certificate"), "\(error)")
            #expect(error.problem.contains("localhost"), "\(error)")
        }
    }

    @Test func requireAgainstAServerWithoutTLSIsRefusedNamingSSLMode() async throws {
        let server = try await PostgresServer()
        try await onThread {
            let error = try #require(throws: WharfError.self) {
                try PostgresStore.open(try Self.location(server, "sslmode=require"), node: "n1")
            }
            #expect(error.problem.contains("TLS"), "\(error)")
            #expect(error.fix?.contains("sslmode") == true, "\(error)")
            #expect(try Self.connections(server).all == 0)
        }
    }
}
