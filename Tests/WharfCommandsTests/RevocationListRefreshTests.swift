import Foundation
import Logging
import Testing
import WharfPKI
import WharfStore
import WharfTestSupport
@testable import WharfCommands

/// `serve` keeps `pki/crl.pem` from going past its next update, and leaves a home that
/// never published one as it is.
@Suite struct RevocationListRefreshTests {
    @Test func aDayOldListIsWrittenAgainAFreshOneAndAMissingOneAreLeftAlone() throws {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        let home = WharfHome(path: fixture.home)
        let refresh = RevocationListRefresh(
            publisher: RevocationListPublisher(pki: home.pki, store: try Registry.open(at: home.registryPath)),
            logger: Logger(label: "test")
        )
        let path = home.pki.revocationListPath
        #expect(!refresh.refreshIfOld(now: Date()))
        #expect(!FileManager.default.fileExists(atPath: path), "a CRL appeared in a home that never asked for one")

        try fixture.succeed("ca", "crl")
        let first = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!refresh.refreshIfOld(now: Date()))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == first)

        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-2 * 86_400)], ofItemAtPath: path)
        let later = Date().addingTimeInterval(60)
        #expect(refresh.refreshIfOld(now: later))
        #expect(try String(contentsOfFile: path, encoding: .utf8) != first)
        let text = try Command.run("openssl", ["crl", "-in", path, "-CAfile", home.pki.caCertificatePath, "-noout", "-nextupdate"])
        #expect(text.succeeded && text.stderr.contains("verify OK"), "\(text.stdout)\(text.stderr)")
    }
}
