import Foundation
import Logging
import ServiceLifecycle
import Testing
import WharfCore
import WharfDelivery
import WharfPostgres
import WharfStore
import WharfTestSupport
@testable import WharfCommands

/// Several `wharf serve` processes on one home whose registry is a PostgreSQL of the
/// test's own: what a gateway of several nodes promises, checked from outside.
@Suite(.serialized) struct SeveralNodesTests {
    /// A home initialised on `server`'s database, its password in a file the home's
    /// wharf.yml names.
    static func sharedHome(_ server: PostgresServer) async throws -> WharfHomeFixture {
        let fixture = try WharfHomeFixture()
        let passwordFile = try fixture.directory.write("db-password", server.password + "\n")
        try await fixture.succeed("init", "--database", server.url, "--database-password-file", passwordFile)
        return fixture
    }

    /// `wharf inbox list --json`, as the ids and digests of what was received.
    static func inbox(_ fixture: WharfHomeFixture) async throws -> [(id: String, sha256: String)] {
        let listed = try await fixture.succeed("inbox", "list", "--json", "--limit", "10000").stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]], "\(listed)")
        return rows.map { ($0["id"] as? String ?? "", $0["sha256"] as? String ?? "") }
    }

    static func nodes(_ fixture: WharfHomeFixture) async throws -> [[String: Any]] {
        let listed = try await fixture.succeed("nodes", "list", "--json").stdout
        return try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]], "\(listed)")
    }

    /// The TCP connections the database has open now (the tests' psql uses the socket).
    static func connections(_ server: PostgresServer) throws -> Int {
        Int(try server.psql("SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL")) ?? -1
    }

    @Test func aGatewayRunsItsDatabaseConnectionsFirstAndClosesThemWhenItStops() async throws {
        let server = try await PostgresServer()
        let fixture = try await Self.sharedHome(server)
        var logger = Logger(label: "wharf.test")
        logger.logLevel = .warning
        let gateway = try Gateway.open(WharfHome(path: fixture.home), logger: logger)
        let services = try gateway.services(listener: nil, delivery: DeliveryConfiguration())
        // First, so that the group, which stops its services in reverse, stops it last.
        #expect(services.first is PostgresStore)
        #expect(services.filter { $0 is PostgresStore }.count == 1)
        let group = ServiceGroup(services: services, logger: logger)
        let running = Task { try await group.run() }
        try await Wait.until(timeout: .seconds(60), "the node's heartbeat") {
            try server.psql("SELECT count(*) FROM node WHERE heartbeat_at > started_at") == "1"
        }
        #expect(try Self.connections(server) > 0)
        await group.triggerGracefulShutdown()
        try await running.value
        // Well within postgres-nio's own idle timeout (60 s), which would close them anyway.
        try await Wait.until(timeout: .seconds(30), "the gateway's connections to close") { try Self.connections(server) == 0 }
    }

    @Test func initRecordsTheDatabaseAndEveryCommandUsesItWithoutShowingThePassword() async throws {
        let server = try await PostgresServer()
        let fixture = try await Self.sharedHome(server)
        let settings = try String(contentsOfFile: "\(fixture.home)/wharf.yml", encoding: .utf8)
        #expect(settings.contains("database-url: '\(server.url)'"), "\(settings)")
        #expect(!settings.contains(server.password))
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.home)/wharf.sqlite"))

        try await fixture.succeed("partner", "add", "acme", "--display-name", "Acme Corp")
        try await fixture.succeed("partner", "issue", "acme")
        #expect(try server.psql("SELECT name FROM partner") == "acme")
        #expect(try await fixture.succeed("partner", "list").stdout.contains("acme"))
        #expect(try await fixture.succeed("audit", "verify").stdout.contains("2 events"))

        // The environment overrides the file, and a password in it is never printed.
        let shown = try await fixture.wharf("config", "show", environment: ["WHARF_DATABASE_URL": server.urlWithPassword])
        #expect(shown.succeeded, "\(shown.stderr)")
        #expect(shown.stdout.contains("environment (WHARF_DATABASE_URL)") && !shown.stdout.contains(server.password), "\(shown.stdout)")

        // `wharf backup` copies SQLite; it says what to use instead, and writes nothing.
        let backup = fixture.directory.file("backup")
        let refusedBackup = try await fixture.wharf("backup", "--to", backup)
        #expect(refusedBackup.status == 1 && refusedBackup.stderr.contains("pg_dump"), "\(refusedBackup.stderr)")
        #expect(!FileManager.default.fileExists(atPath: backup))

        // A second home on a database that holds a registry is refused, and writes nothing.
        let other = try WharfHomeFixture()
        let refused = try await other.wharf("init", "--database", server.url, environment: ["PGPASSWORD": server.password])
        #expect(refused.status == 1 && refused.stderr.contains("already holds a Wharf registry"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: other.home))
        #expect(try server.psql("SELECT count(*) FROM partner") == "1")

        // An embedded home is one node.
        let single = try WharfHomeFixture()
        try await single.succeed("init")
        let one = try await single.wharf("nodes", "list")
        #expect(one.status == 1 && one.stderr.contains("embedded registry: it is one node"), "\(one.stderr)")
    }

    @Test func uploadsToEveryNodeAreInTheInboxOnceFromAnyNode() async throws {
        let server = try await PostgresServer()
        let fixture = try await Self.sharedHome(server)
        try await fixture.succeed("partner", "add", "acme")
        try await fixture.succeed("partner", "issue", "acme")
        let nodes = [
            try await ServeProcess.start(home: fixture.home, ["--node-name", "n1"]),
            try await ServeProcess.start(home: fixture.home, ["--node-name", "n2"]),
        ]
        let bundle = "\(fixture.home)/partners/acme"
        let tls = ["--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt"]
        let files = try (0..<20).map { try TestGatewayFiles(fixture: fixture).randomFile("order-\($0).xml", size: 2_000 + $0) }
        let statuses = try await withThrowingTaskGroup(of: String.self) { group in
            for (index, file) in files.enumerated() {
                let port = nodes[index % 2].port
                group.addTask {
                    try await Command.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}"] + tls
                        + ["--upload-file", file.path, "https://localhost:\(port)/inbox/order-\(index).xml"]).stdout
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: "201", count: 20), "\(statuses)")

        let received = try await Self.inbox(fixture)
        #expect(received.count == 20 && Set(received.map(\.id)).count == 20)
        #expect(Set(received.map(\.sha256)) == Set(files.map(\.sha256)))
        let stored = try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/inbox/acme")
        #expect(stored.count == 20, "\(stored)")
        // Each node staged in its own directory, and left nothing there.
        for name in ["n1", "n2"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/tmp/\(name)").isEmpty)
        }

        try await Wait.until(timeout: .seconds(60), "one node leads") {
            let listed = try Command.run(WharfHomeFixture.binary, ["nodes", "list", "--json", "--home", fixture.home]).stdout
            return listed.contains("\"leader\" : true")
        }
        let listed = try await Self.nodes(fixture)
        #expect(listed.map { $0["name"] as? String } == ["n1", "n2"])
        #expect(listed.allSatisfy { $0["alive"] as? Bool == true })
        #expect(listed.filter { $0["leader"] as? Bool == true }.count == 1)
        #expect(Set(listed.compactMap { $0["address"] as? String }) == Set(nodes.map { "127.0.0.1:\($0.port)" }))

        // The node name is the node's lock: a second process of it is refused.
        let twin = try await Command.runAsync(
            WharfHomeFixture.binary, ["serve", "--home", fixture.home, "--listen", "127.0.0.1:0", "--admin-listen", "off", "--node-name", "n1"]
        )
        #expect(twin.status == 1 && twin.stderr.contains("node n1 of the Wharf home"), "\(twin.stderr)")
        for node in nodes { try await node.stop() }
    }

    @Test func threeHundredTransfersArriveExactlyOnceWhenANodeIsKilledMidWay() async throws {
        let server = try await PostgresServer()
        let receiver = try await TestGateway.start()
        let sender = try await Self.sharedHome(server)
        try await receiver.accept(from: sender)
        let files = try (0..<300).map { try TestGatewayFiles(fixture: sender).randomFile("invoice-\($0).json", size: 500 + $0) }
        try await sender.succeed(["send", "receiver"] + files.map(\.path))

        // A short lease, so the dead node's claims come back within seconds.
        let options = ["--claim-lease", "4", "--retry-initial", "1"]
        var nodes: [String: ServeProcess] = [:]
        for name in ["n1", "n2"] { nodes[name] = try await ServeProcess.start(home: sender.home, ["--node-name", name] + options) }
        // One node is killed while it holds claims: those transfers were being sent when it
        // died. Both are frozen (SIGSTOP) before the claims are read, so neither can finish
        // one between the look and the kill; a node that wakes on its own finishes may
        // hold every slot for a while, so the one killed is whichever holds claims then.
        var victim = ""
        var orphaned: [String] = []
        try await Wait.until(timeout: .seconds(120), "some transfers delivered, others being sent") {
            let delivered = Int(try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered'")) ?? 0
            guard delivered >= 60 else { return false }
            try #require(delivered < 300, "every transfer was delivered before a node was caught holding claims")
            for node in nodes.values { node.process.signal(SIGSTOP) }
            let held = try server.psql("SELECT lease_owner || ' ' || id FROM transfer WHERE lease_owner IS NOT NULL ORDER BY 1")
                .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            victim = held.first?.first ?? ""
            orphaned = held.filter { $0.first == victim }.map { $0[1] }
            for (name, node) in nodes where name != victim { node.process.signal(SIGCONT) }
            return !orphaned.isEmpty
        }
        try await nodes[victim]!.kill()
        // Restarted later, under the same name: it recovers its own claims at once.
        try await Wait.until(timeout: .seconds(120), "more delivered by the survivor") {
            Int(try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered'")) ?? 0 >= 150
        }
        nodes[victim] = try await ServeProcess.start(home: sender.home, ["--node-name", victim] + options)
        try await Wait.until(timeout: .seconds(240), "all 300 delivered") {
            try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered'") == "300"
        }
        for node in nodes.values { try await node.stop() }

        #expect(try server.psql("SELECT count(*) FROM transfer WHERE state <> 'delivered'") == "0")
        let orphanedList = orphaned.map { "'\($0)'" }.joined(separator: ",")
        #expect(try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered' AND id IN (\(orphanedList))") == "\(orphaned.count)")
        let receipts = try receiver.registry.receipts(partner: "sender", limit: 1000)
        try await receiver.stop()
        #expect(receipts.count == 300, "each file once at the receiver")
        #expect(Set(receipts.map(\.sha256)) == Set(files.map(\.sha256)))
        let ids = Set(try server.psql("SELECT id FROM transfer").split(separator: "\n").map(String.init))
        #expect(Set(receipts.compactMap(\.idempotencyKey)) == ids)
        let inbox = try FileManager.default.contentsOfDirectory(atPath: "\(receiver.home)/spool/inbox/sender")
        #expect(inbox.count == 300)
        let listed = try await sender.succeed("transfers", "list", "--state", "delivered", "--limit", "1000", "--json").stdout
        #expect((try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [Any])?.count == 300)
    }

    @Test func uploadsGet503WhileTheDatabaseIsDownAndTheNodeResumesByItself() async throws {
        let server = try await PostgresServer()
        let fixture = try await Self.sharedHome(server)
        try await fixture.succeed("partner", "add", "acme")
        try await fixture.succeed("partner", "issue", "acme")
        let receiver = try await TestGateway.start()
        try await receiver.accept(from: fixture)
        let node = try await ServeProcess.start(
            home: fixture.home, ["--node-name", "n1", "--retry-initial", "1"], admin: "127.0.0.1:0"
        )
        let adminPort = try #require(node.adminPort)
        func readiness() throws -> String {
            try Command.run("curl", ["-sS", "-w", " %{http_code}", "http://127.0.0.1:\(adminPort)/readyz"]).stdout
        }
        #expect(try readiness().hasSuffix(" 200"))
        let bundle = "\(fixture.home)/partners/acme"
        let tls = ["--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt"]
        let file = try TestGatewayFiles(fixture: fixture).randomFile("order.xml", size: 4_000)
        // The final answer's head (after the 100 Continue).
        func upload(_ name: String) async throws -> String {
            try await Command.runAsync("curl", ["-sS", "-H", "Expect:", "-D", "-", "-o", "/dev/null"] + tls
                + ["--upload-file", file.path, "https://localhost:\(node.port)/inbox/\(name)"]).stdout
        }
        #expect(try await upload("before.xml").hasPrefix("HTTP/1.1 201"))

        try await server.stop()
        let stopped = ContinuousClock.now
        let during = try await upload("during.xml")
        #expect(during.hasPrefix("HTTP/1.1 503"), "\(during)")
        #expect(during.lowercased().contains("retry-after: 10"), "\(during)")
        #expect(node.process.isRunning)
        // A load balancer's health check takes the node out meanwhile.
        let notReady = try readiness()
        #expect(notReady.hasSuffix(" 503") && notReady.contains("the registry does not answer"), "\(notReady)")

        // Down for ten seconds in all.
        try await Task.sleep(until: stopped + .seconds(10))
        try await server.start()
        try await Wait.until(timeout: .seconds(60), "uploads accepted again") {
            try Command.run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}"] + tls
                + ["--upload-file", file.path, "https://localhost:\(node.port)/inbox/after.xml"]).stdout == "201"
        }
        #expect(try readiness().hasSuffix(" 200"))
        // Deliveries resume too: a file queued now reaches the receiver.
        try await fixture.succeed("send", "receiver", file.path)
        try await Wait.until(timeout: .seconds(60), "the delivery") {
            try server.psql("SELECT state FROM transfer") == "delivered"
        }
        try await node.stop()
        #expect(try receiver.registry.receipts(partner: "sender").map(\.sha256) == [file.sha256])
        try await receiver.stop()
        let received = try await Self.inbox(fixture)
        #expect(received.count == 2, "the refused upload left no receipt: \(received)")
        let stored = try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/inbox/acme").sorted()
        #expect(stored.count == 2 && !stored.contains { $0.contains("during") }, "\(stored)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/tmp/n1").isEmpty)
    }

    @Test func dbCopyMovesEveryRowOfAPopulatedHomeAndTheGatewayServesFromPostgreSQL() async throws {
        let server = try await PostgresServer()
        let receiver = try await TestGateway.start()
        let fixture = try TestGateway.homeWithAcme()
        try await receiver.accept(from: fixture)
        // Something in the tables: uploads, a delivered and a waiting transfer, a schedule, a hook.
        let gateway = try await TestGateway.start(fixture: fixture)
        let files = try (0..<3).map { try TestGatewayFiles(fixture: fixture).randomFile("in-\($0).xml", size: 1_000 + $0) }
        for file in files {
            let status = try await Command.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}"] + gateway.credentials()
                + ["--upload-file", file.path, gateway.url("/inbox/\((file.path as NSString).lastPathComponent)")]).stdout
            #expect(status == "201")
        }
        try await fixture.succeed("send", "receiver", files[0].path)
        try await Wait.until("the delivery") { try gateway.registry.transfers(state: .delivered).count == 1 }
        try await gateway.stop()
        try await fixture.succeed("schedule", "add", "receiver", "--cron", "0 3 * * *", "--from", fixture.directory.path)
        try await fixture.succeed("hook", "add", "--on", "received", "--exec", "/bin/true")
        let before = try TestGateway.registry(home: fixture.home)
        let receipts = try before.receipts(partner: nil, limit: 100)
        let transfers = try before.transfers(limit: 100)
        let auditCount = try before.auditHead().count

        let passwordFile = try fixture.directory.write("db-password", server.password + "\n")
        let copied = try await fixture.succeed("db", "copy", "--to", server.url, "--database-password-file", passwordFile).stdout
        let count = { (table: String, rows: Int) in copied.contains("  \(table.padding(toLength: 20, withPad: " ", startingAt: 0)) \(rows)\n") }
        #expect(count("receipt", 3) && count("transfer", 1) && count("audit_event", auditCount) && count("schedule", 1), "\(copied)")
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.home)/wharf.sqlite"))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/wharf.sqlite.copied"))
        let settings = try String(contentsOfFile: "\(fixture.home)/wharf.yml", encoding: .utf8)
        #expect(settings.contains("database-url: '\(server.url)'") && !settings.contains("# database-url"), "\(settings)")

        // Every row is there, read through the commands.
        #expect(try await Self.inbox(fixture).map(\.id).sorted() == receipts.map(\.id).sorted())
        let listed = try await fixture.succeed("transfers", "list", "--json").stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        #expect(rows.compactMap { $0["id"] as? String } == transfers.map(\.id))
        #expect(try await fixture.succeed("schedule", "list").stdout.contains("0 3 * * *"))
        #expect(try await fixture.succeed("hook", "list").stdout.contains("/bin/true"))
        #expect(try await fixture.succeed("audit", "verify").stdout.contains("\(auditCount + 1) events"))

        // The gateway serves from PostgreSQL.
        let node = try await ServeProcess.start(home: fixture.home, ["--node-name", "n1"])
        let bundle = "\(fixture.home)/partners/acme"
        let status = try await Command.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt",
            "--upload-file", files[1].path, "https://localhost:\(node.port)/inbox/after.xml"]).stdout
        #expect(status == "201")
        try await node.stop()
        try await receiver.stop()
        #expect(try server.psql("SELECT count(*) FROM receipt") == "4")

        // A second copy is refused, as is a copy into a database that is not empty.
        let again = try await fixture.wharf("db", "copy", "--to", server.url)
        #expect(again.status == 1 && again.stderr.contains("already uses PostgreSQL"), "\(again.stderr)")
        let other = try TestGateway.homeWithAcme()
        let refused = try await other.wharf("db", "copy", "--to", server.url, environment: ["PGPASSWORD": server.password])
        #expect(refused.status == 1 && refused.stderr.contains("not empty"), "\(refused.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(other.home)/wharf.sqlite"))
        #expect(!(try String(contentsOfFile: "\(other.home)/wharf.yml", encoding: .utf8)).contains("database-url: '"))
        #expect(try server.psql("SELECT count(*) FROM partner") == "2")
    }

    @Test func aScheduleFiresEachSlotOnceWhenTheLeaderIsKilledBetweenSlots() async throws {
        let server = try await PostgresServer()
        let receiver = try await TestGateway.start()
        let fixture = try await Self.sharedHome(server)
        try await receiver.accept(from: fixture)
        let outbox = fixture.directory.file("outbox")
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        try await fixture.succeed("schedule", "add", "receiver", "--cron", "* * * * *", "--from", outbox)
        _ = try fixture.directory.write("outbox/first.csv", "a,b\n")
        var nodes: [String: ServeProcess] = [:]
        for name in ["n1", "n2", "n3"] { nodes[name] = try await ServeProcess.start(home: fixture.home, ["--node-name", name]) }
        let firings = { try server.psql("SELECT to_char(slot, 'HH24:MI') || ' ' || fired_by FROM schedule_firing ORDER BY slot") }

        try await Wait.until(timeout: .seconds(90), "the first slot fired") { try !firings().isEmpty }
        let first = try firings().split(separator: " ")
        let leader = String(try #require(first.last))
        try await nodes[leader]!.kill()
        _ = try fixture.directory.write("outbox/second.csv", "c,d\n")

        try await Wait.until(timeout: .seconds(120), "the next slot fired by another node") {
            try firings().split(separator: "\n").count >= 2
        }
        for (name, node) in nodes where name != leader { try await node.stop() }
        try await receiver.stop()
        let fired = try firings().split(separator: "\n").map { $0.split(separator: " ") }
        #expect(fired.count == 2, "\(fired)")
        #expect(fired[1].last.map(String.init) != leader, "\(fired)")
        // Consecutive minutes: no slot skipped, none fired twice.
        let minutes = fired.compactMap { $0.first.map { $0.split(separator: ":").compactMap { Int($0) } } }.map { $0[0] * 60 + $0[1] }
        #expect(minutes.count == 2 && (minutes[1] - minutes[0] + 1440) % 1440 == 1, "\(fired)")
        // Each file queued once.
        #expect(try server.psql("SELECT filename FROM transfer ORDER BY filename") == "first.csv\nsecond.csv")
    }
}
