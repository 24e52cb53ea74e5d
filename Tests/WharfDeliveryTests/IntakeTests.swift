import Foundation
import Logging
import Testing
import WharfCore
import WharfDelivery
import WharfSpool
import WharfStore
import WharfTestSupport

/// Files queued by the drop folder, by schedules and by `send --wait`, delivered to nginx.
@Suite(.serialized) struct IntakeTests {
    static func senderWithNginx(location: String = "inbox") async throws -> (WharfHomeFixture, NginxPartner) {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(location), "--server-ca", nginx.serverCAFile)
        return (fixture, nginx)
    }

    @Test func aCompleteFileInTheDropFolderIsMovedIntoTheSpoolAndDelivered() async throws {
        let (fixture, nginx) = try await Self.senderWithNginx()
        let drop = "\(fixture.home)/spool/outbound/partner"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        try "<order/>".write(toFile: "\(drop)/order.xml", atomically: false, encoding: .utf8)
        try "half".write(toFile: "\(drop)/.order-2.xml", atomically: false, encoding: .utf8)
        try "half".write(toFile: "\(drop)/order-3.xml.tmp", atomically: false, encoding: .utf8)
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()

        #expect(try String(contentsOfFile: "\(nginx.received)/order.xml", encoding: .utf8) == "<order/>")
        #expect(try FileManager.default.contentsOfDirectory(atPath: drop).sorted() == [".order-2.xml", "order-3.xml.tmp"])
        #expect(try NginxDeliveryTests.transfers(fixture).map(\.state) == [.delivered])
    }

    @Test func aScheduleQueuesMatchingFilesWhenDueAndWithKeepOnlyChangedOnes() async throws {
        let (fixture, nginx) = try await Self.senderWithNginx()
        let source = fixture.directory.file("outgoing-reports")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "a1".write(toFile: "\(source)/a.xml", atomically: false, encoding: .utf8)
        try "b1".write(toFile: "\(source)/b.xml", atomically: false, encoding: .utf8)
        try "c1".write(toFile: "\(source)/c.txt", atomically: false, encoding: .utf8)
        let added = Date()
        try await fixture.succeed("schedule", "add", "partner", "--cron", "* * * * *", "--from", source, "--pattern", "*.xml", "--keep")
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        let schedule = try #require(try registry.schedules().first)
        #expect(Self.isTheMinuteAfter(schedule.nextRunAt, from: added), "the first run is the next minute")

        // The clock moves on: the schedule falls due.
        func runDue() async throws {
            try registry.setNextRun(of: schedule.id, to: Date().addingTimeInterval(-1))
            try await fixture.succeed("deliver", "--once")
        }
        let ran = Date()
        try await runDue()
        #expect(Set(try NginxDeliveryTests.transfers(fixture).map(\.filename)) == ["a.xml", "b.xml"])
        #expect(Self.isTheMinuteAfter(try registry.schedules().first!.nextRunAt, from: ran), "the next run is set")

        try await runDue()
        #expect(try NginxDeliveryTests.transfers(fixture).count == 2, "unchanged files are not sent again")

        try "a2".write(toFile: "\(source)/a.xml", atomically: false, encoding: .utf8)
        try await runDue()
        try await nginx.stop()
        let transfers = try NginxDeliveryTests.transfers(fixture)
        #expect(transfers.count == 3 && transfers.allSatisfy { $0.state == .delivered })
        #expect(try String(contentsOfFile: "\(nginx.received)/a.xml", encoding: .utf8) == "a2")
        #expect(try FileManager.default.contentsOfDirectory(atPath: source).sorted() == ["a.xml", "b.xml", "c.txt"], "--keep leaves the files")
    }

    /// Whether `next` is a whole minute later than `start` and no more than a minute after now: the
    /// minute may turn while the command runs, so "later than now" alone would be a race.
    static func isTheMinuteAfter(_ next: Date, from start: Date) -> Bool {
        let seconds = next.timeIntervalSince1970
        return next > start && next <= Date().addingTimeInterval(60) && seconds == seconds.rounded(.down) && Int(seconds) % 60 == 0
    }

    @Test func aScheduleWithoutKeepMovesTheFiles() async throws {
        let (fixture, nginx) = try await Self.senderWithNginx()
        let source = fixture.directory.file("out")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "x".write(toFile: "\(source)/x.csv", atomically: false, encoding: .utf8)
        try await fixture.succeed("schedule", "add", "partner", "--cron", "0 6 * * *", "--from", source)
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        try registry.setNextRun(of: try #require(try registry.schedules().first).id, to: Date().addingTimeInterval(-1))
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()
        #expect(try FileManager.default.contentsOfDirectory(atPath: source).isEmpty)
        #expect(try String(contentsOfFile: "\(nginx.received)/x.csv", encoding: .utf8) == "x")
        let listed = try await fixture.succeed("schedule", "list", "--json").stdout
        #expect(listed.contains("0 6 * * *"))
    }

    @Test func sendWaitReportsTheOutcomeAndExitsNonZeroWhenATransferDies() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "good", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        try await fixture.succeed("partner", "add", "bad", "--url", nginx.url("fail400"), "--server-ca", nginx.serverCAFile)
        let server = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", fixture.home, "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        try await server.waitForOutput { $0.contains("Listening on") }
        let file = try TestGatewayFiles(fixture: fixture).randomFile("a.bin", size: 1_000)

        let delivered = try await fixture.wharf("send", "good", file.path, "--wait", "--timeout", "60")
        let died = try await fixture.wharf("send", "bad", file.path, "--wait", "--timeout", "60")
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
        try await nginx.stop()

        #expect(delivered.status == 0, "\(delivered.stdout)\(delivered.stderr)")
        #expect(delivered.stdout.contains("delivered"))
        #expect(died.status == 1)
        #expect(died.stdout.contains("dead") && died.stdout.contains("HTTP 400"))
    }

    @Test func aPartnerThatHangsDoesNotDelayAnother() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        // A port that accepts TCP connections and never answers: TLS handshakes hang.
        let silentPort = try FreePort.pick()
        let silent = try BackgroundProcess("python3", ["-c",
            "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', \(silentPort))); s.listen(64); time.sleep(120)"])
        try await Wait.until { (try? Command.run("bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(silentPort)"]))?.succeeded == true }
        try await fixture.succeed("partner", "add", "hung", "--url", "https://localhost:\(silentPort)/inbox")
        try await fixture.succeed("partner", "add", "fine", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        let files = try (0..<6).map { try TestGatewayFiles(fixture: fixture).randomFile("f\($0).bin", size: 1_000) }
        try await fixture.succeed(["send", "hung"] + files.map(\.path))
        try await fixture.succeed("send", "fine", files[0].path)

        let server = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", fixture.home, "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        try await Wait.until(timeout: .seconds(8), "the healthy partner's delivery while the other hangs") {
            try registry.transfers(state: .delivered, partner: "fine").count == 1
        }
        let hung = try registry.transfers(partner: "hung")
        server.signal(SIGKILL)
        silent.signal(SIGKILL)
        try await nginx.stop()
        #expect(hung.filter { $0.state == .sending }.count == 4, "at most 4 at once to one partner: \(hung.map(\.state))")
        #expect(hung.allSatisfy { !$0.state.isFinal })
    }
}

/// What a crash between a commit and the file move leaves behind is finished at start.
@Suite(.serialized) struct OutboundRecoveryTests {
    @Test func committedTransfersWhoseFilesWereNotMovedYetAreFinishedAtStart() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://localhost:\(try FreePort.pick())/inbox", "--max-attempts", "5")
        let files = try (0..<2).map { try TestGatewayFiles(fixture: fixture).randomFile("r\($0).bin", size: 100) }
        try await fixture.succeed(["send", "partner"] + files.map(\.path))
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        let transfers = try registry.transfers().sorted { $0.filename < $1.filename }
        let spool = "\(fixture.home)/spool"

        // A delivery recorded, its file not yet moved to sent/.
        let delivered = transfers[0]
        _ = try registry.claimDue(now: Date(), defaultPerPartner: 4, limit: 1)
        try registry.finish(
            delivered,
            attempt: DeliveryAttempt(transferID: delivered.id, number: 1, startedAt: Date(), duration: 0.1, curlCode: 0,
                                     httpStatus: 201, bytesSent: 100, error: nil),
            outcome: .delivered(receipt: "{}")
        )
        // A transfer committed, its file still staged.
        let queued = transfers[1]
        try FileManager.default.moveItem(atPath: "\(spool)/outgoing/\(queued.id)", toPath: "\(spool)/tmp/\(queued.id).out")

        try await fixture.succeed("deliver", "--once")

        #expect(FileManager.default.fileExists(atPath: "\(spool)/sent/partner/\(delivered.id)-r0.bin"))
        #expect(!FileManager.default.fileExists(atPath: "\(spool)/outgoing/\(delivered.id)"))
        #expect(FileManager.default.fileExists(atPath: "\(spool)/outgoing/\(queued.id)"))
        let attempted = try #require(try registry.transfer(id: queued.id))
        #expect(attempted.state == .retrying, "the receiver is down, the file is there: \(attempted)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(spool)/tmp").isEmpty)
    }
}

/// Collects what is logged, for tests of what a component logs.
final class CollectedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(Logger.Level, String)] = []

    var messages: [String] { lock.withLock { lines.map(\.1) } }

    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(collected: self) }
    }

    struct Handler: LogHandler {
        let collected: CollectedLogs
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            collected.lock.withLock { collected.lines.append((event.level, "\(event.message)")) }
        }
    }
}

@Suite struct DropFolderLogTests {
    @Test func aDropFolderThatNamesNoPartnerIsWarnedAboutOncePerAppearance() throws {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        let spool = Spool(root: "\(fixture.home)/spool")
        try spool.prepare()
        let logs = CollectedLogs()
        let drop = DropFolder(store: try Registry.open(at: "\(fixture.home)/wharf.sqlite"), spool: spool, logger: logs.logger())
        let stray = "\(spool.dropDirectory)/nobody"
        try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: true)
        try "x".write(toFile: "\(stray)/a.xml", atomically: false, encoding: .utf8)
        for _ in 0..<3 { drop.scan() }
        let warning = "a drop folder names no partner; its files wait"
        #expect(logs.messages.filter { $0 == warning }.count == 1)
        try FileManager.default.removeItem(atPath: stray)
        drop.scan()
        try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: true)
        drop.scan()
        #expect(logs.messages.filter { $0 == warning }.count == 2, "it came back, and is warned about again")
    }
}
