import Testing
import WharfCore
@testable import WharfListener

@Suite struct PresentedCertificatesTests {
    func certificate(_ byte: UInt8) throws -> PresentedCertificate {
        PresentedCertificate(
            fingerprint: CertificateFingerprint(digest: Array(repeating: byte, count: 32)), subject: nil,
            subjectText: "CN=\(byte)", issuer: .wharf
        )
    }

    @Test func aCertificateIsMadeOnceAndAnotherOneOnItsOwn() throws {
        let known = CertificateMemo<PresentedCertificate>()
        var made = 0
        for der in [[1, 2, 3], [1, 2, 3], [4, 5], [1, 2, 3]] as [[UInt8]] {
            let presented = try known.value(for: der) {
                made += 1
                return try certificate(der[0])
            }
            #expect(presented.subjectText == "CN=\(der[0])")
        }
        #expect(made == 2)
    }

    @Test func pastItsCapacityTheMemoryStartsOver() throws {
        let known = CertificateMemo<PresentedCertificate>()
        var made = 0
        for index in 0...CertificateMemo<PresentedCertificate>.capacity {
            _ = try known.value(for: withUnsafeBytes(of: index) { Array($0) }) { made += 1; return try certificate(1) }
        }
        _ = try known.value(for: withUnsafeBytes(of: 0) { Array($0) }) { made += 1; return try certificate(1) }
        #expect(made == CertificateMemo<PresentedCertificate>.capacity + 2)
    }
}
