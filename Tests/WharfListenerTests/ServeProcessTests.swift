import Crypto
import Foundation
import Synchronization
import Testing
import WharfTestSupport

/// `wharf serve` as a process: killed mid-upload, and stopped gracefully.
@Suite(.serialized) struct ServeProcessTests {
    struct Server {
        let process: BackgroundProcess
        let port: Int

        static func start(home: String) async throws -> Server {
            let process = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", home, "--listen", "127.0.0.1:0"])
            let output = try await process.waitForOutput { $0.contains("Listening on") }
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("Listening on") })
            return Server(process: process, port: try #require(Int(line.split(separator: ":").last ?? "")))
        }
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    @Test func aSecondGatewayOnTheSameHomeIsRefusedNamingTheHolderUntilTheFirstIsGone() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let first = try await Server.start(home: fixture.home)
        let pid = String(first.process.pid)
        for arguments in [["serve", "--listen", "127.0.0.1:0"], ["deliver", "--once"]] {
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
        #expect(result.status == 201, "\(result.body) \(result.stderr)")
        #expect(result.json?["sha256"] as? String == file.sha256)
        #expect(try await server.process.waitForExit() == 0)
    }
}
