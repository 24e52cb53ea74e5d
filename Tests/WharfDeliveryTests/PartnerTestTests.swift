import Foundation
import Testing
import WharfStore
import WharfTestSupport

/// `wharf partner test` against nginx: what it finds, in words, and its exit status.
@Suite(.serialized) struct PartnerTestTests {
    @Test func aPartnerSetUpRightPasses() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        let pin = try nginx.pin
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile, "--pin", pin)
        let result = try await fixture.wharf("partner", "test", "partner")
        try await nginx.stop()
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        for expected in ["with TLSv1.3", "server certificate: CN=localhost,O=Wharf, issued by CN=Partner Root,O=Wharf", "host name localhost matches",
                         "pin \(pin) matches", "our client certificate was accepted", "A delivery to partner would succeed."] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in \(result.stdout)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: nginx.received).isEmpty, "a test sends no file")
    }

    @Test func withoutLibcurlTheTestAndADeliverySayWhatToInstall() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        let missing = ["WHARF_LIBCURL": "/nonexistent/libcurl.so.4"]
        let probe = try await fixture.wharf("partner", "test", "partner", environment: missing)
        #expect(probe.status == 1)
        #expect(probe.stdout.hasPrefix("[FAIL] libcurl could not be loaded: /nonexistent/libcurl.so.4"), "\(probe.stdout)")
        #expect(probe.stdout.contains("apt-get install libcurl4"), "\(probe.stdout)")
        #expect(!probe.stdout.contains("[ok]"), "nothing was checked, so nothing is ok: \(probe.stdout)")

        // A delivery records the same reason, keeps the file, and nothing reaches the partner.
        let file = try TestGatewayFiles(fixture: fixture).randomFile("order.json", size: 500)
        try await fixture.succeed("send", "partner", file.path)
        _ = try await fixture.wharf("deliver", "--once", environment: missing)
        let transfer = try #require(try Registry.open(at: "\(fixture.home)/wharf.sqlite").transfers().first)
        try await nginx.stop()
        #expect(transfer.state != .delivered)
        #expect(transfer.lastError?.contains("libcurl could not be loaded") == true, "\(transfer.lastError ?? "no error")")
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/spool/outgoing/\(transfer.id)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: nginx.received).isEmpty)
        let attempt = try #require(try Registry.open(at: "\(fixture.home)/wharf.sqlite").attempts(of: transfer.id).first)
        #expect(attempt.curlCode == nil, "an attempt that never reached libcurl has no curl code")
        let shown = try await fixture.succeed("transfers", "show", transfer.id).stdout
        #expect(shown.contains("not sent"), "\(shown)")
    }

    @Test func aWrongPinFailsAndPrintsTheServersPinReadyToPaste() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "partner", "--url", nginx.url(), "--server-ca", nginx.serverCAFile,
                                  "--pin", "sha256//" + Data(repeating: 3, count: 32).base64EncodedString())
        let result = try await fixture.wharf("partner", "test", "partner")
        try await nginx.stop()
        #expect(result.status == 1)
        #expect(result.stdout.contains("[FAIL] no pin matches; the server's key is \(try nginx.pin)"), "\(result.stdout)")
        #expect(result.stdout.contains("wharf partner update partner --pin \(try nginx.pin)"))
    }

    @Test func anUntrustedServerAndARefusedClientCertificateFail() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        let other = try await NginxDeliveryTests.sender()
        // nginx trusts another Wharf's CA, and we do not give nginx's CA.
        let nginx = try await NginxPartner(clientCA: "\(other.home)/pki/identity-ca.crt")
        try await fixture.succeed("partner", "add", "untrusted", "--url", nginx.url())
        try await fixture.succeed("partner", "add", "refusing", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        let untrusted = try await fixture.wharf("partner", "test", "untrusted")
        let refusing = try await fixture.wharf("partner", "test", "refusing")
        try await nginx.stop()
        #expect(untrusted.status == 1)
        #expect(untrusted.stdout.contains("not trusted by the system's CA store"), "\(untrusted.stdout)")
        #expect(untrusted.stdout.contains("no pins set; the server's key is sha256//"))
        #expect(refusing.status == 1)
        #expect(refusing.stdout.contains("our client certificate was probably refused: GET \(nginx.url())/ answered HTTP 400"), "\(refusing.stdout)")
    }

    @Test func nothingListeningFailsAtConnect() async throws {
        let fixture = try await NginxDeliveryTests.sender()
        try await fixture.succeed("partner", "add", "gone", "--url", "https://localhost:\(try FreePort.pick())/inbox")
        let result = try await fixture.wharf("partner", "test", "gone")
        #expect(result.status == 1)
        #expect(result.stdout.contains("[FAIL] connect to https://localhost:"), "\(result.stdout)")
    }
}
