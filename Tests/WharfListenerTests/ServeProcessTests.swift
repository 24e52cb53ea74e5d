import Crypto
import Foundation
import Synchronization
import Testing
import WharfTestSupport

/// `wharf serve` as a process: killed mid-upload, and stopped gracefully.
@Suite(.serialized) struct ServeProcessTests {
    typealias Server = ServeProcess

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    @Test func aSecondGatewayOnTheSameHomeIsRefusedNamingTheHolderUntilTheFirstIsGone() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let first = try await Server.start(home: fixture.home)
        let pid = String(first.process.pid)
        for arguments in [["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"], ["deliver", "--once"]] {
            let second = try await Command.runAsync(WharfHomeFixture.binary, arguments + ["--home", fixture.home])
            #expect(second.status == 1, "\(arguments): \(second.stdout)")
            #expect(second.stderr.contains("the Wharf home \(fixture.home) is in use by process \(pid)"), "\(second.stderr)")
            #expect(!second.stdout.contains("Listening on"))
        }
        // The lock goes with its process, however it ends.
        first.process.signal(SIGKILL)
        _ = try await first.process.waitForExit()
        try await fixture.succeed("deliver", "--once")
    }

    @Test func serveOnAnAddressInUseSaysSoInOneLine() async throws {
        let first = try TestGateway.homeWithAcme()
        let running = try await Server.start(home: first.home)
        let second = try TestGateway.homeWithAcme()
        let refused = try await Command.runAsync(
            WharfHomeFixture.binary, ["serve", "--home", second.home, "--listen", "127.0.0.1:\(running.port)", "--admin-listen", "off"]
        )
        running.process.signal(SIGTERM)
        _ = try await running.process.waitForExit()
        #expect(refused.status == 1)
        // One line says what failed (the log lines before it are the gateway starting).
        let errors = refused.stderr.split(separator: "\n").filter { $0.hasPrefix("wharf: ") }
        #expect(errors.count == 1, "\(refused.stderr)")
        #expect(errors.first?.hasPrefix("wharf: cannot listen on 127.0.0.1:\(running.port): the address is in use") == true, "\(refused.stderr)")
    }

    @Test func serveLogsEveryUploadAndEveryRefusalAsOneJSONObjectPerLine() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let server = try await Server.start(home: fixture.home, ["--log-format", "json"])
        let file = try TestGatewayFiles(fixture: fixture).randomFile("order.xml", size: 1_234)
        let bundle = "\(fixture.home)/partners/acme"
        let tls = ["--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt"]
        let url = "https://localhost:\(server.port)/inbox"
        let accepted = try await Command.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}"] + tls + ["--upload-file", file.path, "\(url)/order.xml"])
        let wrongDigest = "Content-Digest: sha-256=:" + Data(count: 32).base64EncodedString() + ":"
        let refused = try await Command.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", wrongDigest] + tls + ["--upload-file", file.path, "\(url)/bad.xml"])
        #expect(accepted.stdout == "201" && refused.stdout == "400")
        try await Wait.until("the refusal logged") { server.process.stderr.contains("request refused") }
        server.process.signal(SIGTERM)
        _ = try await server.process.waitForExit()

        let lines = server.process.stderr.split(separator: "\n")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count, "every line is a JSON object: \(server.process.stderr)")
        #expect(objects.allSatisfy { ($0["timestamp"] as? String)?.hasSuffix("Z") == true && $0["level"] is String })
        let upload = try #require(objects.first { $0["message"] as? String == "upload accepted" })
        #expect(upload["level"] as? String == "info" && upload["partner"] as? String == "acme")
        #expect(upload["file"] as? String == "order.xml" && upload["size"] as? String == "1234")
        #expect(upload["sha256"] as? String == file.sha256 && (upload["receipt"] as? String)?.isEmpty == false)
        #expect(Double(upload["duration"] as? String ?? "") != nil)
        let refusal = try #require(objects.first { $0["message"] as? String == "request refused" })
        #expect(refusal["level"] as? String == "notice" && refusal["status"] as? String == "400")
        #expect(refusal["code"] as? String == "digest_mismatch" && refusal["partner"] as? String == "acme")
        #expect((refusal["remote"] as? String)?.hasPrefix("127.0.0.1:") == true)
    }

    @Test func serveWarnsAboutACertificateThatExpiresSoonWhenItStarts() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let soon = Date().addingTimeInterval(10 * 86_400).formatted(.iso8601)
        try await fixture.succeed("partner", "add", "beta", "--fingerprint", String(repeating: "cd", count: 32), "--not-after", soon)
        let server = try await Server.start(home: fixture.home)
        try await Wait.until("the warning") { server.process.stderr.contains("a certificate expires soon") }
        server.process.signal(SIGTERM)
        _ = try await server.process.waitForExit()
        let warning = try #require(server.process.stderr.split(separator: "\n").first { $0.contains("a certificate expires soon") })
        #expect(warning.contains("warning") && warning.contains("partner=beta") && warning.contains("days_left=9"), "\(warning)")
    }

    @Test func underSystemdServeSaysReadyOnceListeningAndStoppingWhenShutdownBegins() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let socket = fixture.directory.file("notify.sock")
        // systemd's side: a datagram socket that prints what it receives, one line each.
        let systemd = try BackgroundProcess("python3", ["-u", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(sys.argv[1])
            print("bound")
            while True:
                print(s.recv(4096).decode())
            """, socket])
        _ = try await systemd.waitForOutput { $0.contains("bound") }
        let server = try await Server.start(home: fixture.home, environment: ["NOTIFY_SOCKET": socket])
        try await Wait.until("READY=1") { systemd.stdout.contains("READY=1") }
        #expect(!systemd.stdout.contains("STOPPING=1"))
        server.process.signal(SIGTERM)
        try await Wait.until("STOPPING=1") { systemd.stdout.contains("STOPPING=1") }
        #expect(try await server.process.waitForExit() == 0)
        systemd.signal(SIGKILL)
        _ = try await systemd.waitForExit()
    }

    /// `systemd-analyze` comes with Debian's systemd package, which scripts/test installs.
    @Test func systemdAcceptsTheUnitFile() async throws {
        let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/systemd/wharf.service").path
        // The unit runs /usr/local/bin/wharf, which verify checks exists: this build stands in.
        let directory = try TemporaryDirectory("wharf-unit")
        let text = try String(contentsOfFile: unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/wharf", with: WharfHomeFixture.binary)
        let copy = try directory.write("wharf.service", text)
        let verified = try await Command.runAsync("systemd-analyze", ["verify", "--man=no", copy])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(!verified.stderr.contains("wharf.service:"), "no warning about the unit: \(verified.stderr)")
    }

    @Test func afterSIGKILLOnlyWholeFilesAreInTheInboxAndEveryAcknowledgedOneIsThere() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let helper = TestGatewayFiles(fixture: fixture)
        let files = try (0..<20).map { index in
            try helper.randomFile("file-\(index).bin", size: index < 10 ? 4_000 * (index + 1) : 1_500_000 + index * 10_000)
        }
        let server = try await Server.start(home: fixture.home)
        let bundle = "\(fixture.home)/partners/acme"

        let results = try await withThrowingTaskGroup(of: (Int, HTTPResult).self) { group in
            for (index, file) in files.enumerated() {
                group.addTask {
                    // Small files go at full speed; large ones slowly enough to be in flight at the kill.
                    let result = try await Command.runAsync("curl", [
                        "-sS", "-w", "\n%{http_code}", "--limit-rate", index < 10 ? "100M" : "100K",
                        "--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt",
                        "--upload-file", file.path, "https://localhost:\(server.port)/inbox/file-\(index).bin",
                    ])
                    return (index, HTTPResult(result))
                }
            }
            // Kill the server once the small files are stored and the large ones are in flight.
            // Watched in the inbox, not through curl's results, which can reach the test late.
            let inbox = "\(fixture.home)/spool/inbox/acme"
            try await Wait.until("ten uploads stored") {
                ((try? FileManager.default.contentsOfDirectory(atPath: inbox)) ?? []).count >= 10
            }
            server.process.signal(SIGKILL)
            var results: [Int: HTTPResult] = [:]
            for try await (index, result) in group { results[index] = result }
            return results
        }
        _ = try await server.process.waitForExit()

        let restarted = try await Server.start(home: fixture.home)
        restarted.process.signal(SIGTERM)
        #expect(try await restarted.process.waitForExit() == 0)

        let inbox = "\(fixture.home)/spool/inbox/acme"
        let stored = Set(try FileManager.default.contentsOfDirectory(atPath: inbox))
        let acknowledged = results.filter { $0.value.status == 201 }
        // A file can be stored with its 201 still on the way when the kill lands.
        #expect(stored.count >= 10, "small uploads were stored before the kill")
        #expect(acknowledged.count < 20, "some uploads were in flight at the kill")
        for (index, result) in acknowledged {
            let id = try #require(result.json?["id"] as? String)
            let name = "\(id)-file-\(index).bin"
            #expect(stored.contains(name), "acknowledged \(name) is missing")
            if stored.contains(name) {
                #expect(try Self.sha256("\(inbox)/\(name)") == files[index].sha256)
            }
        }
        // Whatever else is there is a whole upload, with its receipt.
        let receipts = try TestGateway.registry(home: fixture.home).receipts(partner: "acme", limit: 100)
        #expect(Set(receipts.map(\.storedName)) == stored)
        for receipt in receipts {
            let index = try #require(Int(receipt.filename.dropFirst("file-".count).dropLast(".bin".count)))
            #expect(receipt.sha256 == files[index].sha256)
            #expect(try Self.sha256("\(inbox)/\(receipt.storedName)") == files[index].sha256)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/tmp").isEmpty)
    }

    @Test func sigtermStopsAcceptingFinishesTheUploadInFlightAndExitsZero() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let file = try TestGatewayFiles(fixture: fixture).randomFile("slow.bin", size: 600_000)
        let server = try await Server.start(home: fixture.home)
        let bundle = "\(fixture.home)/partners/acme"
        let credentials = ["--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--cacert", "\(bundle)/ca.crt"]

        async let upload = Command.runAsync("curl", ["-sS", "-w", "\n%{http_code}", "--limit-rate", "200K"] + credentials + [
            "--upload-file", file.path, "https://localhost:\(server.port)/inbox/slow.bin",
        ])
        try await Wait.until("the upload to start") {
            (try? FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/tmp"))?.isEmpty == false
        }
        server.process.signal(SIGTERM)
        try await Wait.until("the listener to close") {
            let probe = try Command.run("curl", ["-sS", "-o", "/dev/null"] + credentials + ["https://localhost:\(server.port)/inbox"])
            return probe.status == 7
        }
        let result = HTTPResult(try await upload)
        let status = try await server.process.waitForExit()
        // The gateway's log says why, if the upload or the exit went wrong.
        #expect(result.status == 201, "\(result.body) \(result.stderr)\n\(server.process.stderr)")
        #expect(result.json?["sha256"] as? String == file.sha256)
        #expect(status == 0, "\(server.process.stderr)")
    }
}
