import Foundation
import Testing
import WharfCore
import WharfStore
import WharfTestSupport

/// The defender against a real attacker: certificate-less handshakes from 127.0.0.2 get it
/// banned (closed at accept, before TLS), a partner on 127.0.0.1 keeps uploading, and the
/// ban is listed and lifted from the CLI without a restart. Refusals before a partner is
/// known are written to the audit trail counted, not one commit each.
@Suite struct DefenderTests {
    /// What a connection from `source` meets: `tls` if the gateway answers a ClientHello,
    /// `closed` if it closes the connection without a byte (a ban, at accept).
    static func firstAnswer(_ gateway: TestGateway, from source: String) async throws -> String {
        let result = try await Command.runAsync("python3", ["-c", """
            import socket, ssl
            hello = ssl.MemoryBIO(); incoming = ssl.MemoryBIO()
            tls = ssl.create_default_context().wrap_bio(incoming, hello, server_hostname="localhost")
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            connection = socket.create_connection(("127.0.0.1", \(gateway.port)), source_address=("\(source)", 0), timeout=60)
            try:
                connection.sendall(hello.read())
                answer = connection.recv(5)
            except ConnectionResetError:
                answer = b""
            print("tls" if answer[:1] == b"\\x16" else "closed" if answer == b"" else "other")
            """])
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A handshake without a client certificate from `source`: refused by TLS, 2 points.
    static func refusedHandshake(_ gateway: TestGateway, from source: String) async throws -> HTTPResult {
        try await gateway.curl(["--interface", source, gateway.url("/inbox")], as: nil)
    }

    static func refusals(_ gateway: TestGateway) throws -> [AuditEvent] {
        try gateway.registry.auditEvents(AuditFilter(kind: .refusal), limit: 1000)
    }

    @Test func anAttackerIsBannedAtAcceptWhileAPartnerKeepsUploadingAndAnUnbanLetsItBackIn() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.defenderAllow = []
            configuration.defenderRefreshInterval = .milliseconds(100)
        }
        let file = try gateway.randomFile("steady.txt", size: 1000)
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.2") == "tls")

        // 15 points at 2 a refused handshake: the eighth bans; the partner uploads between.
        for attempt in 1...8 {
            let refused = try await Self.refusedHandshake(gateway, from: "127.0.0.2")
            #expect(refused.status == 0, "attempt \(attempt) got an answer: \(refused.body)")
            #expect(try await gateway.put(file.path, as: "steady-\(attempt).txt").status == 201)
        }
        // The ban is scored as the eighth refusal's connection ends, maybe after curl exits.
        try await Wait.until("the ban stored") { try !gateway.registry.addressBans().isEmpty }
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.2") == "closed")
        #expect(try await gateway.curl(["--interface", "127.0.0.2", "--upload-file", file.path, gateway.url("/inbox/banned.txt")]).status == 0,
                "a banned address is refused even with a partner's certificate")
        #expect(try await gateway.put(file.path, as: "after-ban.txt").status == 201)
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.3") == "tls", "another address is not banned")

        // The CLI sees the ban, and lifts it without a restart.
        let listed = try await gateway.fixture.succeed("defender", "list", "--json").stdout
        let bans = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        #expect(bans.count == 1 && bans.first?["address"] as? String == "127.0.0.2" && bans.first?["times"] as? Int == 1, "\(listed)")
        #expect(bans.first?["reason"] as? String == "handshake_refused")
        let unbanned = try await gateway.fixture.succeed("defender", "unban", "127.0.0.2").stdout
        #expect(unbanned.contains("Lifted the ban on 127.0.0.2"))
        try await Wait.within(.seconds(30), "127.0.0.2 let in again") {
            while try await Self.firstAnswer(gateway, from: "127.0.0.2") != "tls" {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(try await gateway.fixture.succeed("defender", "list").stdout.contains("No address is banned."))
        // A lifted ban does not count: the next one is a first ban again (30 minutes, not 45).
        for _ in 1...8 { _ = try await Self.refusedHandshake(gateway, from: "127.0.0.2") }
        try await Wait.until("banned again") { try gateway.registry.addressBans().contains { $0.isActive(at: Date()) } }
        let again = try #require(try gateway.registry.addressBans().first { $0.address == "127.0.0.2" })
        #expect(again.times == 1 && abs(again.until.timeIntervalSince(again.since) - 1800) < 1, "\(again)")
        try await gateway.stop()

        let events = try Self.refusals(gateway)
        #expect(events.contains { $0.remoteAddress == "127.0.0.2" && $0.detail?.hasPrefix("address banned for 30 minutes (ban 1)") == true })
        #expect(events.contains { $0.remoteAddress == "127.0.0.2" && $0.detail?.hasPrefix("connection closed at accept: the address is banned") == true })
        let admin = try gateway.registry.auditEvents(AuditFilter(kind: .admin), limit: 10)
        #expect(admin.contains { $0.command == "defender unban" && $0.detail == "ban on 127.0.0.2 lifted" })
        #expect(try gateway.registry.receipts(partner: "acme", limit: 100).count == 9)
    }

    @Test func anAllowedAddressIsNeverBanned() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.defenderAllow = [try! AddressRange("127.0.0.0/30")]
        }
        for _ in 1...12 { _ = try await Self.refusedHandshake(gateway, from: "127.0.0.2") }
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.2") == "tls")
        try await gateway.stop()
        #expect(try gateway.registry.addressBans().isEmpty)
    }

    @Test func aBanOutlivesARestart() async throws {
        let first = try await TestGateway.start { $0.defenderAllow = [] }
        for _ in 1...8 { _ = try await Self.refusedHandshake(first, from: "127.0.0.4") }
        try await Wait.until("the ban stored") { try !first.registry.addressBans().isEmpty }
        try await first.stop()
        let second = try await TestGateway.start(fixture: first.fixture) { $0.defenderAllow = [] }
        #expect(try await Self.firstAnswer(second, from: "127.0.0.4") == "closed")
        #expect(try await Self.firstAnswer(second, from: "127.0.0.5") == "tls")
        try await second.stop()
    }

    @Test func refusalsBeforeAPartnerIsKnownAreWrittenCountedNotOneCommitEach() async throws {
        let gateway = try await TestGateway.start(admin: 0) { configuration in
            configuration.defender = false
            // No batch falls due during the test, however slow the machine: only the stop writes.
            configuration.refusalFlushInterval = .seconds(3600)
        }
        let before = try Self.refusals(gateway).count
        for _ in 1...30 { _ = try await Self.refusedHandshake(gateway, from: "127.0.0.6") }
        // Every one of them seen by the listener (curl may exit before the server is done).
        try await Wait.within(.seconds(60), "30 handshake failures counted") {
            let series = #"wharf_tls_handshake_failures_total{reason="no_certificate"}"#
            while AdminListenerTests.Scrape(text: try await AdminListenerTests.scrape(gateway).body).value(series) != 30 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        // Counted, not written: nothing in the trail until the minute's batch (or the stop).
        #expect(try Self.refusals(gateway).count == before)
        try await gateway.stop()
        let written = try Self.refusals(gateway).filter { $0.remoteAddress?.hasPrefix("127.0.0.6") == true }
        // 30 refusals in one or two minutes: one or two rows, together counting all 30.
        #expect((1...2).contains(written.count), "\(written.map(\.detail))")
        let counts = written.map { event -> Int in
            guard let range = event.detail?.range(of: #"\((\d+) times"#, options: .regularExpression) else { return 1 }
            return Int(event.detail![range].dropFirst().prefix { $0.isNumber })!
        }
        #expect(counts.reduce(0, +) == 30, "\(written.map(\.detail))")
        #expect(written.allSatisfy { $0.detail?.hasPrefix("TLS handshake failed: PEER_DID_NOT_RETURN_A_CERTIFICATE") == true })
    }

    @Test func slowClientsScoreButAnIdleKeepAliveConnectionDoesNot() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.defenderAllow = []
            configuration.defenderRefreshInterval = .milliseconds(100)
            // Wide enough that a busy machine's partner sends its request in time (an idle
            // client that did not would be scored); the silent ones just wait longer.
            configuration.handshakeTimeout = .seconds(5)
            configuration.requestHeadTimeout = .seconds(3)
        }
        // Each client waits until the gateway closes its connection; all in parallel.
        let script = """
            import socket, ssl, sys, threading
            port, bundle = int(sys.argv[1]), sys.argv[2]
            results = []
            def connect(source):
                return socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=120)
            def partner(raw):
                context = ssl.create_default_context(cafile=bundle + "/ca.crt")
                context.load_cert_chain(bundle + "/acme.crt", bundle + "/acme.key")
                return context.wrap_socket(raw, server_hostname="localhost")
            def until_closed(connection):
                data = b""
                try:
                    while chunk := connection.recv(4096):
                        data += chunk
                except (ConnectionResetError, ssl.SSLError):
                    pass
                return data
            def silent(source):                      # no TLS handshake at all
                results.append(("silent", until_closed(connect(source)) == b""))
            def no_request(source):                  # a handshake, then no request head
                results.append(("no-request", until_closed(partner(connect(source))) == b""))
            def idle(source, n):                     # one upload, then an idle keep-alive connection
                connection = partner(connect(source))
                connection.sendall(b"PUT /inbox/idle-%d.txt HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 3\\r\\n\\r\\nabc" % n)
                results.append(("idle", b" 201 " in until_closed(connection)))
            jobs = [threading.Thread(target=idle, args=("127.0.0.3", n)) for n in range(6)]
            jobs += [threading.Thread(target=silent, args=("127.0.0.2",)) for _ in range(3)]
            jobs += [threading.Thread(target=no_request, args=("127.0.0.2",)) for _ in range(2)]
            for job in jobs: job.start()
            for job in jobs: job.join()
            print(sorted(results))
            """
        let run = try await Command.runAsync("python3", ["-c", script, String(gateway.port), "\(gateway.home)/partners/acme"])
        #expect(run.stdout.contains("[('idle', True), ('idle', True), ('idle', True), ('idle', True), ('idle', True), ('idle', True), ('no-request', True), ('no-request', True), ('silent', True), ('silent', True), ('silent', True)]"), "\(run.stdout)\(run.stderr)")

        // 5 slow connections × 3 points ban 127.0.0.2; six idle keep-alive connections
        // (18 points if they counted) leave 127.0.0.3 alone. Its connections were scored
        // before the ban was, so the ban stored means the store has both verdicts.
        try await Wait.until("the ban stored") { try gateway.registry.addressBans().contains { $0.address == "127.0.0.2" } }
        let bans = try gateway.registry.addressBans()
        #expect(bans.map(\.address) == ["127.0.0.2"] && bans.first?.reason == "too_slow", "\(bans)")
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.3") == "tls")
        #expect(try await Self.firstAnswer(gateway, from: "127.0.0.2") == "closed")
        try await gateway.stop()
    }
}
