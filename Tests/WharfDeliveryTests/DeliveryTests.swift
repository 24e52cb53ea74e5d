import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
import WharfCore
@testable import WharfDelivery
import WharfPKI
import WharfSpool
import WharfStore
import WharfTestSupport

/// Deliveries with the real `wharf send` and `wharf deliver --once` to a real nginx.
@Suite(.serialized) struct NginxDeliveryTests {
    /// A sender home whose client certificate nginx will check against Wharf's CA.
    static func sender() async throws -> WharfHomeFixture {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init")
        return fixture
    }

    static func file(_ fixture: WharfHomeFixture, _ name: String, size: Int = 10_000) throws -> (path: String, sha256: String) {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: generator.next()) }
        let path = fixture.directory.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, Hex.encode(SHA256.hash(data: bytes)))
    }

    static func transfers(_ fixture: WharfHomeFixture) throws -> [Transfer] {
        try Registry.open(at: "\(fixture.home)/wharf.sqlite").transfers()
    }

    static func attempts(_ fixture: WharfHomeFixture, _ id: String) throws -> [DeliveryAttempt] {
        try Registry.open(at: "\(fixture.home)/wharf.sqlite").attempts(of: id)
    }

    /// A delivery worker over `fixture`'s registry and spool, run in the test's process.
    static func worker(
        _ fixture: WharfHomeFixture, configuration: DeliveryConfiguration = DeliveryConfiguration(),
        leads: @escaping @Sendable () -> Bool = { true }
    ) throws -> DeliveryWorker {
        DeliveryWorker(
            configuration: configuration, store: try Registry.open(at: "\(fixture.home)/wharf.sqlite"),
            spool: Spool(root: "\(fixture.home)/spool"), pki: PKIDirectory(path: "\(fixture.home)/pki"), leads: leads,
            logger: Logger(label: "test")
        )
    }

    /// `wharf deliver --once` in a run where one transfer dies: it says so and exits 1.
    static func deliverOnceExpectingADeath(_ fixture: WharfHomeFixture, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let run = try await fixture.wharf("deliver", "--once")
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stdout.contains("dead: 1"), "\(run.stdout)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains("1 transfer died in this run"), "\(run.stderr)", sourceLocation: sourceLocation)
    }

    static func sha256(_ path: String) throws -> String {
        Hex.encode(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test func aFileReachesNginxWithTheRightPinAndMovesToSent() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile, "--pin", try nginx.pin)
        let file = try Self.file(fixture, "invoice.xml")
        let sent = try await fixture.succeed("send", "partner", file.path).stdout
        #expect(sent.contains("queued") && sent.contains("invoice.xml"))
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()

        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .delivered, "\(transfer)")
        #expect(try Self.sha256("\(nginx.received)/invoice.xml") == file.sha256)
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/spool/sent/partner/\(transfer.id)-invoice.xml"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/outgoing").isEmpty)
        let attempts = try Self.attempts(fixture, transfer.id)
        #expect(attempts.count == 1 && attempts[0].httpStatus == 201 && attempts[0].bytesSent == 10_000)
    }

    @Test func theNextPinBesideTheCurrentOneIsAcceptedForRotation() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        let nextKey = "sha256//" + Data(repeating: 9, count: 32).base64EncodedString()
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile,
                                  "--pin", nextKey, "--pin", try nginx.pin)
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()
        #expect(try Self.transfers(fixture).first?.state == .delivered)
    }

    @Test func aWrongPinIsRefusedBeforeAnyByteOfTheBodyAndTheTransferDies() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile,
                                  "--pin", "sha256//" + Data(repeating: 1, count: 32).base64EncodedString())
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await Self.deliverOnceExpectingADeath(fixture)

        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .dead)
        #expect(transfer.lastError?.contains("matches none of the partner's pins") == true, "\(transfer.lastError ?? "")")
        let attempts = try Self.attempts(fixture, transfer.id)
        #expect(attempts.count == 1 && attempts[0].bytesSent == 0 && attempts[0].curlCode == 90)
        #expect(try FileManager.default.contentsOfDirectory(atPath: nginx.received).isEmpty)

        // Fixed, and sent again on request.
        try await fixture.succeed("partner", "update", "partner", "--pin", try nginx.pin)
        try await fixture.succeed("transfers", "retry", transfer.id)
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()
        let resent = try #require(try Self.transfers(fixture).first)
        #expect(resent.state == .delivered, "\(resent)")
        #expect(try Self.attempts(fixture, transfer.id).count == 2)
    }

    @Test func aServerCertificateFromAnotherCAKillsTheTransfer() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        // Wharf's own CA did not sign nginx's certificate.
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await Self.deliverOnceExpectingADeath(fixture)
        try await nginx.stop()
        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .dead)
        #expect(transfer.lastError?.contains("curl 60") == true, "\(transfer.lastError ?? "")")
    }

    @Test func ourCertificateRefusedByThePartnerKillsTheTransfer() async throws {
        let fixture = try await Self.sender()
        let stranger = try TemporaryDirectory("wharf-stranger")
        try await Command.runAsync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                               "-keyout", stranger.file("ca.key"), "-out", stranger.file("ca.crt"), "-subj", "/CN=Other", "-days", "2"])
        let nginx = try await NginxPartner(clientCA: stranger.file("ca.crt"))
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await Self.deliverOnceExpectingADeath(fixture)
        try await nginx.stop()
        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .dead, "\(transfer)")
        #expect(transfer.lastError?.contains("HTTP 400") == true || transfer.lastError?.contains("refused our client certificate") == true,
                "\(transfer.lastError ?? "")")
    }

    @Test func http400KillsTheTransferAtOnce() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url("fail400"), "--server-ca", nginx.serverCAFile)
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await Self.deliverOnceExpectingADeath(fixture)
        // The next run counts its own attempts, not the queue's history.
        let quiet = try await fixture.succeed("deliver", "--once").stdout
        #expect(quiet.contains("delivered: 0, retrying: 0, dead: 0"), "\(quiet)")
        try await nginx.stop()
        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .dead)
        #expect(transfer.attempts == 1)
        #expect(transfer.lastError?.hasPrefix("HTTP 400") == true, "\(transfer.lastError ?? "")")
    }

    @Test func a503WithRetryAfterIsRetriedNoSoonerThanAskedUntilAttemptsRunOut() async throws {
        let fixture = try await Self.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url("busy"), "--server-ca", nginx.serverCAFile,
                                  "--retry-initial", "0", "--max-attempts", "3")
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        // Each run delivers what is due; a retry falls due a second later (Retry-After: 1).
        var transfer = try #require(try Self.transfers(fixture).first)
        // Three attempts are allowed; a few more runs than that and the loop gives up.
        for _ in 0..<6 where !transfer.state.isFinal {
            let run = try await fixture.wharf("deliver", "--once")
            transfer = try #require(try Self.transfers(fixture).first)
            #expect(run.status == (transfer.state == .dead ? 1 : 0), "only the run in which it dies fails: \(run.stdout)")
            if let next = transfer.nextAttemptAt { try await Task.sleep(for: .seconds(max(0, next.timeIntervalSinceNow) + 0.05)) }
        }
        try await nginx.stop()
        #expect(transfer.state == .dead)
        #expect(transfer.lastError?.contains("gave up after 3 attempts") == true, "\(transfer.lastError ?? "")")
        let attempts = try Self.attempts(fixture, transfer.id)
        #expect(attempts.map(\.httpStatus) == [503, 503, 503])
        for (earlier, later) in zip(attempts, attempts.dropFirst()) {
            #expect(later.startedAt.timeIntervalSince(earlier.startedAt) >= 1, "Retry-After was not honoured")
        }
    }

    @Test func aReceiverThatIsDownGetsTheFileOnceItIsUp() async throws {
        let fixture = try await Self.sender()
        let port = try FreePort.pick()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://localhost:\(port)/inbox", "--retry-initial", "0.2")
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        try await fixture.succeed("deliver", "--once")
        let waiting = try #require(try Self.transfers(fixture).first)
        #expect(waiting.state == .retrying, "\(waiting)")
        #expect(waiting.lastError?.contains("curl 7") == true, "\(waiting.lastError ?? "")")

        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt", port: port)
        try await fixture.succeed("partner", "update", "partner", "--server-ca", nginx.serverCAFile)
        if let next = waiting.nextAttemptAt { try await Task.sleep(for: .seconds(max(0, next.timeIntervalSinceNow) + 0.05)) }
        try await fixture.succeed("deliver", "--once")
        try await nginx.stop()
        let transfer = try #require(try Self.transfers(fixture).first)
        #expect(transfer.state == .delivered, "\(transfer)")
        let attempts = try Self.attempts(fixture, transfer.id)
        #expect(attempts.first?.curlCode == 7 && attempts.last?.httpStatus == 201, "\(attempts)")
    }

    @Test func cancelRemovesAQueuedTransferAndItsFile() async throws {
        let fixture = try await Self.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://localhost:9/inbox")
        try await fixture.succeed("send", "partner", try Self.file(fixture, "a.bin").path)
        let transfer = try #require(try Self.transfers(fixture).first)
        try await fixture.succeed("transfers", "cancel", transfer.id)
        #expect(try Self.transfers(fixture).first?.state == .cancelled)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/outgoing").isEmpty)
        let again = try await fixture.wharf("transfers", "cancel", transfer.id)
        #expect(again.status != 0 && again.stderr.contains("cannot be cancelled"))
    }
}

@Suite(.serialized) struct DeliveryWorkerWakeTests {
    @Test func aFinishedDeliveryStartsTheNextAtOnceRatherThanAtTheNextPoll() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile, "--max-deliveries", "1")
        let files = try (0..<6).map { try NginxDeliveryTests.file(fixture, "file-\($0).bin", size: 2_000) }
        try await fixture.succeed(["send", "partner"] + files.map(\.path))

        // One delivery at a time and an hour between polls: only finished deliveries can
        // start the next five.
        var configuration = DeliveryConfiguration()
        configuration.pollInterval = .seconds(3600)
        let worker = try NginxDeliveryTests.worker(fixture, configuration: configuration)
        let drained = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await worker.drain(); return true }
            group.addTask { try await Task.sleep(for: .seconds(60)); return false }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        try await nginx.stop()

        let states = try NginxDeliveryTests.transfers(fixture).map { "\($0.state) \($0.attempts) \($0.lastError ?? "")" }
        #expect(drained, "the worker waited for its poll between deliveries: \(states)")
        #expect(try NginxDeliveryTests.transfers(fixture).allSatisfy { $0.state == .delivered })
        for (index, file) in files.enumerated() {
            #expect(try NginxDeliveryTests.sha256("\(nginx.received)/file-\(index).bin") == file.sha256)
        }
    }
}

@Suite struct FileOnItsWayTests {
    @Test func aTransferClaimedBeforeItsFileIsInOutgoingIsGivenBackNotKilled() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://localhost:9/inbox")
        try await fixture.succeed("send", "partner", try NginxDeliveryTests.file(fixture, "a.bin").path)
        let id = try #require(try NginxDeliveryTests.transfers(fixture).first?.id)
        // As between the sender's commit and its move into outgoing/, where another node
        // woken by the commit may claim it: committed, the file not there yet.
        let spool = Spool(root: "\(fixture.home)/spool")
        let onItsWay = "\(fixture.home)/spool/tmp/\(id).out"
        #expect(rename(spool.outgoingPath(id), onItsWay) == 0)
        let worker = try NginxDeliveryTests.worker(fixture)

        _ = try await worker.drain()
        let waiting = try #require(try NginxDeliveryTests.transfers(fixture).first)
        #expect(waiting.state == .retrying && waiting.attempts == 0, "\(waiting)")
        #expect(waiting.lastError?.contains("not in") == true, "\(waiting)")

        // The file arrives; the next claim after the short wait attempts it (and the
        // receiver's refusal is an ordinary retry).
        #expect(rename(onItsWay, spool.outgoingPath(id)) == 0)
        let deadline = ContinuousClock.now + .seconds(60)
        while try NginxDeliveryTests.attempts(fixture, id).isEmpty, ContinuousClock.now < deadline {
            _ = try await worker.drain()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try NginxDeliveryTests.attempts(fixture, id).first?.curlCode == 7)
        #expect(try NginxDeliveryTests.transfers(fixture).first?.state == .retrying)
    }
}

@Suite struct SentPruningTests {
    @Test func onlyAWorkerThatLeadsPrunesDeliveredFiles() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://localhost:9/inbox")
        let spool = Spool(root: "\(fixture.home)/spool")
        try FileManager.default.createDirectory(atPath: "\(spool.sentDirectory)/partner", withIntermediateDirectories: true)
        let old = "\(spool.sentDirectory)/partner/old.bin"
        try "delivered a month ago".write(toFile: old, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-30 * 86_400)], ofItemAtPath: old)

        for leads in [false, true] {
            // A transfer due, so that the drain makes a round (an empty queue ends it first);
            // its attempt is refused at once and retried later.
            try await fixture.succeed("send", "partner", try NginxDeliveryTests.file(fixture, "due-\(leads).bin").path)
            let tally = try await NginxDeliveryTests.worker(fixture, leads: { leads }).drain()
            #expect(tally.retrying >= 1, "\(tally)")
            #expect(FileManager.default.fileExists(atPath: old) == !leads, leads ? "the leader prunes" : "another node leaves it to the leader")
        }
    }
}

@Suite struct OwnClientCredentialTests {
    @Test func wharfsOwnClientCertificateIsReadOnceAndAgainWhenItsFilesAreReplaced() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let pki = PKIDirectory(path: "\(fixture.home)/pki")
        let own = OwnClientCredential(pki: pki)
        let first = try own.current()
        let client = try String(contentsOfFile: pki.clientCertificatePath, encoding: .utf8)
        #expect(first.certificatePEM.trimmingCharacters(in: .whitespacesAndNewlines) == client.trimmingCharacters(in: .whitespacesAndNewlines))

        // Replaced by rename, as Wharf writes its files: the server's pair stands in for a new one.
        for (from, to) in [(pki.serverKeyPath, pki.clientKeyPath), (pki.serverCertificatePath, pki.clientCertificatePath)] {
            try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
            #expect(rename(to + ".new", to) == 0)
        }
        let second = try own.current()
        let server = try String(contentsOfFile: pki.serverCertificatePath, encoding: .utf8)
        #expect(second.certificatePEM.trimmingCharacters(in: .whitespacesAndNewlines) == server.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(second.certificatePEM != first.certificatePEM)
    }
}

@Suite struct ClaimedPartnersTests {
    @Test func aPartnerIsReadOnceAndAgainAfterAClaimSeesTheRegistryChanged() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://a.example/in")
        try await fixture.succeed("send", "partner", try NginxDeliveryTests.file(fixture, "a.bin").path)
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        let name = try PartnerName("partner")
        let partners = ClaimedPartners()

        let claim = try registry.claimDue(now: Date(), defaultPerPartner: 4, limit: 8)
        #expect(claim.transfers.count == 1)
        partners.keep(ifStill: claim.partnerGeneration)
        #expect(try partners.partner(named: name, from: registry)?.outbound.url?.description == "https://a.example/in")

        try await fixture.succeed("partner", "update", "partner", "--url", "https://b.example/in")
        // Until a claim reads the new generation, the partner as it was is kept.
        #expect(try partners.partner(named: name, from: registry)?.outbound.url?.description == "https://a.example/in")
        let next = try registry.claimDue(now: Date(), defaultPerPartner: 4, limit: 8)
        #expect(next.transfers.isEmpty && next.partnerGeneration > claim.partnerGeneration)
        partners.keep(ifStill: next.partnerGeneration)
        #expect(try partners.partner(named: name, from: registry)?.outbound.url?.description == "https://b.example/in")
    }

    @Test func deliveriesThatNeedAPartnerBeingReadShareThatRead() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://a.example/in")
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        let store = GatedPartnerReads(registry)
        let partners = ClaimedPartners()
        partners.keep(ifStill: try registry.partnerGeneration())

        // Eight deliveries of one claim ask at once; the first read is held until the
        // other seven wait for it (or, were each to read, until a second read starts).
        let urls = NIOLockedValueBox<[String]>([])
        let threads = (0..<8).map { _ in
            Thread {
                let url = (try? partners.partner(named: try PartnerName("partner"), from: store))??.outbound.url?.description
                urls.withLockedValue { $0.append(url ?? "none") }
            }
        }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(60)
        while partners.waitingForReads < 7 && store.reads < 2 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        store.release()
        while urls.withLockedValue({ $0.count }) < 8 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(store.reads == 1, "one read for eight deliveries")
        #expect(urls.withLockedValue { $0 } == Array(repeating: "https://a.example/in", count: 8))
    }
}

/// A registry whose partner reads are counted, the first held until `release()`.
private final class GatedPartnerReads: PartnerDirectory {
    private let registry: Registry
    private let counted = NIOLockedValueBox(0)
    private let gate = DispatchSemaphore(value: 0)

    init(_ registry: Registry) {
        self.registry = registry
    }

    var reads: Int { counted.withLockedValue { $0 } }

    func release() {
        gate.signal()
    }

    func partner(named name: PartnerName) throws(WharfError) -> Partner? {
        let first = counted.withLockedValue { count in
            count += 1
            return count == 1
        }
        if first { gate.wait() }
        return try registry.partner(named: name)
    }

    func owners(ofFingerprint fingerprint: CertificateFingerprint, subject: SubjectName?, serial: String?) throws(WharfError) -> InboundOwners {
        try registry.owners(ofFingerprint: fingerprint, subject: subject, serial: serial)
    }

    func revocations() throws(WharfError) -> [Revocation] { try registry.revocations() }
    func partnerGeneration() throws(WharfError) -> Int64 { try registry.partnerGeneration() }
    func partnerTrustAnchors() throws(WharfError) -> [(partner: PartnerName, pem: String)] { try registry.partnerTrustAnchors() }
    func pinnedFingerprints() throws(WharfError) -> Set<CertificateFingerprint> { try registry.pinnedFingerprints() }
    func partnerRevocationLists() throws(WharfError) -> [(partner: PartnerName, path: String)] { try registry.partnerRevocationLists() }
}

@Suite struct ClaimWithFinishTests {
    func attempt(_ transfer: Transfer) -> DeliveryAttempt {
        DeliveryAttempt(transferID: transfer.id, number: 1, startedAt: Date(), duration: 0.1, curlCode: 0,
                        httpStatus: 201, bytesSent: transfer.size, error: nil)
    }

    @Test func finishingADeliveryClaimsTheNextForItsSlotAndGivesItBackIfItCannotStartIt() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "partner", "--url", "https://a.example/in", "--max-deliveries", "1")
        let files = try (0..<3).map { try NginxDeliveryTests.file(fixture, "f\($0).bin", size: 100) }
        try await fixture.succeed(["send", "partner"] + files.map(\.path))
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")

        let first = try #require(try registry.claimDue(now: Date(), defaultPerPartner: 4, limit: 8).transfers.only)
        let claim = try registry.finish(first, attempt: attempt(first), outcome: .delivered(receipt: "{}"),
                                        claimingNext: (Date(), 4))
        let second = try #require(claim?.transfers.only, "the slot the delivery freed is taken at once")
        #expect(second.id != first.id)
        #expect(try registry.transfer(id: second.id)?.state == .sending)
        #expect(try registry.transfers().filter { $0.state == .queued }.count == 1, "the partner's limit of one holds")

        struct MoveFailed: Error {}
        #expect(throws: (any Error).self) {
            try registry.finish(second, attempt: attempt(second), outcome: .delivered(receipt: "{}"),
                                claimingNext: (Date(), 4)) { throw MoveFailed() }
        }
        #expect(try registry.transfer(id: second.id)?.state == .delivered)
        let third = try #require(try registry.transfers().first { $0.id != first.id && $0.id != second.id })
        #expect(third.state == .retrying && (third.nextAttemptAt ?? .distantFuture) <= Date(), "\(third)")
        #expect(try registry.transfers().allSatisfy { $0.state != .sending })
    }
}

extension Array {
    /// The one element, if there is exactly one.
    fileprivate var only: Element? { count == 1 ? first : nil }
}
