import Testing
@testable import WharfDelivery

/// Where a delivery may resume: only on the server it was sent to.
@Suite struct ResumableDeliveryTests {
    @Test func anUploadLocationIsKeptOnlyOnTheSameServer() {
        let url = "https://partner.example:8443/inbox/big.bin"
        #expect(CurlDelivery.resolve("/uploads/u1", against: url) == "https://partner.example:8443/uploads/u1")
        #expect(CurlDelivery.resolve("https://partner.example:8443/uploads/u1", against: url) == "https://partner.example:8443/uploads/u1")
        for elsewhere in ["https://other.example:8443/uploads/u1", "http://partner.example:8443/uploads/u1", "https://partner.example:9443/uploads/u1", "//other.example/u"] {
            #expect(CurlDelivery.resolve(elsewhere, against: url) == nil, "\(elsewhere)")
        }
    }
}
