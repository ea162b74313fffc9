"""boto3 (AWS's own S3 client) against Updraft's S3 listener: every operation Updraft
implements, and the refusals. Run by crates/cli/tests/all/objects.rs:

    python s3_suite.py <endpoint> <config.json>

config.json names the bucket made for the test, a public bucket, and three keys: `full` (the
project's, no grants), `readonly` (`<bucket>:read`) and `other` (another project's). Prints
`ok <n> checks` on success; any failed check raises with a message naming it.
"""

import base64
import hashlib
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import zlib

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
CFG = json.load(open(sys.argv[2]))
B = CFG["bucket"]
CHECKS = 0


def client(key, secret=None, **kw):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=secret or key["secret_access_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **kw),
    )


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def refused(fn, code, what):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{what}: expected {code}, got {got} ({e})")
        return
    raise AssertionError(f"{what}: expected {code}, the call succeeded")


def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


full = client(CFG["full"])
ro = client(CFG["readonly"])
other = client(CFG["other"])

# Buckets.
check(B in [b["Name"] for b in full.list_buckets()["Buckets"]], "ListBuckets shows the bucket")
check(
    [b["Name"] for b in ro.list_buckets()["Buckets"]] == [B],
    "a key scoped to one bucket lists only it",
)
check(
    B not in [b["Name"] for b in other.list_buckets()["Buckets"]],
    "another project's key does not see the bucket",
)
full.create_bucket(Bucket="made-by-boto3")
full.head_bucket(Bucket="made-by-boto3")
refused(lambda: full.create_bucket(Bucket="made-by-boto3"), "BucketAlreadyOwnedByYou", "recreate")
refused(lambda: other.create_bucket(Bucket="made-by-boto3"), "BucketAlreadyExists", "taken name")
refused(lambda: full.create_bucket(Bucket="Bad_Name"), "InvalidBucketName", "bad name")
refused(lambda: ro.create_bucket(Bucket="ro-made"), "AccessDenied", "scoped key creates a bucket")
refused(lambda: full.head_bucket(Bucket="no-such-bucket-here"), "404", "HeadBucket of a missing one")

# Put and get: content type, user metadata, cache headers, MD5 ETag, default CRC32 checksum.
body = os.urandom(300_000)
key = "dir/a b+c%é.bin"
r = full.put_object(
    Bucket=B,
    Key=key,
    Body=body,
    ContentType="application/x-test",
    Metadata={"Owner": "ada"},
    CacheControl="max-age=60",
)
check(r["ETag"].strip('"') == hashlib.md5(body).hexdigest(), "PutObject ETag is the MD5")
g = full.get_object(Bucket=B, Key=key)
check(g["Body"].read() == body, "GetObject returns the bytes")
check(g["ContentType"] == "application/x-test", "content type kept")
check(g["Metadata"] == {"owner": "ada"}, f"user metadata kept: {g['Metadata']}")
check(g["CacheControl"] == "max-age=60", "cache control kept")
h = full.head_object(Bucket=B, Key=key, ChecksumMode="ENABLED")
check(h["ContentLength"] == len(body), "HeadObject length")
check("ChecksumCRC32" in h or "ChecksumCRC64NVME" in h, f"a checksum was kept: {h}")

# A streamed body of unknown length: aws-chunked with a trailing checksum.
class Unseekable(io.RawIOBase):
    def __init__(self, data):
        self.data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        chunk = self.data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


streamed = os.urandom(1_000_000)
full.upload_fileobj(Unseekable(streamed), B, "streamed.bin")
check(full.get_object(Bucket=B, Key="streamed.bin")["Body"].read() == streamed, "streamed put")


# aws-chunked with a trailing CRC32, as SDKs send over TLS (boto3 >= 1.36, aws-sdk-js v3):
# signed by botocore, framed here because boto3 uses trailers only on https endpoints.
def chunked_put(key, data, crc):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"".join(
        f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (data[:70000], data[70000:]) if c
    ) + f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    req = AWSRequest(
        method="PUT",
        url=f"{ENDPOINT}/{B}/{urllib.request.quote(key)}",
        data=body,
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "X-Amz-Decoded-Content-Length": str(len(data)),
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "x-amz-sdk-checksum-algorithm": "CRC32",
        },
    )
    # What botocore sets when it chooses a trailer itself: sign STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    req.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
    k = CFG["full"]
    S3SigV4Auth(Credentials(k["access_key_id"], k["secret_access_key"]), "s3", "us-east-1").add_auth(req)
    return http("PUT", req.url, data=body, headers=dict(req.headers.items()))


trailed = os.urandom(100_000)
crc = base64.b64encode(zlib.crc32(trailed).to_bytes(4, "big")).decode()
status, text = chunked_put("trailed.bin", trailed, crc)
check(status == 200, f"aws-chunked put with a trailing checksum: {status} {text[:300]}")
got = full.get_object(Bucket=B, Key="trailed.bin", ChecksumMode="ENABLED")
check(got["Body"].read() == trailed, "the chunk framing is not stored")
check(got.get("ChecksumCRC32") == crc, f"the trailer's checksum is kept: {got.get('ChecksumCRC32')}")
status, text = chunked_put("trailed-bad.bin", trailed, "AAAAAA==")
check(status == 400 and b"BadDigest" in text, f"a wrong trailing checksum: {status} {text[:300]}")
refused(lambda: full.head_object(Bucket=B, Key="trailed-bad.bin"), "404", "nothing stored")
refused(
    lambda: full.put_object(Bucket=B, Key="bad-sum", Body=b"hello", ChecksumCRC32="AAAAAA=="),
    "BadDigest",
    "a wrong CRC32",
)
refused(lambda: full.head_object(Bucket=B, Key="bad-sum"), "404", "a refused put stores nothing")

# Ranges and conditions.
check(full.get_object(Bucket=B, Key=key, Range="bytes=10-19")["Body"].read() == body[10:20], "range")
check(full.get_object(Bucket=B, Key=key, Range="bytes=-5")["Body"].read() == body[-5:], "suffix")
check(full.get_object(Bucket=B, Key=key, Range="bytes=299990-")["Body"].read() == body[299990:], "open")
refused(lambda: full.get_object(Bucket=B, Key=key, Range="bytes=400000-"), "InvalidRange", "range")
refused(lambda: full.get_object(Bucket=B, Key=key, IfNoneMatch=r["ETag"]), "304", "If-None-Match")
refused(lambda: full.get_object(Bucket=B, Key=key, IfMatch='"nope"'), "PreconditionFailed", "If-Match")
check(full.get_object(Bucket=B, Key=key, IfMatch=r["ETag"])["Body"].read() == body, "If-Match ok")
refused(lambda: full.get_object(Bucket=B, Key="missing"), "NoSuchKey", "missing key")
refused(lambda: full.head_object(Bucket=B, Key="missing"), "404", "HeadObject of a missing key")
refused(
    lambda: full.put_object(Bucket=B, Key=key, Body=b"x", IfNoneMatch="*"),
    "PreconditionFailed",
    "If-None-Match: * on an existing key",
)

# Listing: delimiters, odd keys, pages, start-after, v1 and v2.
odd = ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/x y+z%.jpg",
       "photos/ünï/ç.txt", "top.txt", "a&b<c>.txt", "tab\there"]
for k in odd:
    full.put_object(Bucket=B, Key=k, Body=k.encode())
page = full.list_objects_v2(Bucket=B, Prefix="photos/", Delimiter="/")
check(
    [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    == ["photos/2024/", "photos/2025/", "photos/ünï/"],
    f"common prefixes: {page.get('CommonPrefixes')}",
)
check([o["Key"] for o in page["Contents"]] == ["photos/x y+z%.jpg"], f"contents: {page['Contents']}")
everything = sorted(odd + [key, "streamed.bin", "trailed.bin"], key=lambda s: s.encode())
seen = []
for p in full.get_paginator("list_objects_v2").paginate(Bucket=B, PaginationConfig={"PageSize": 2}):
    check(len(p.get("Contents", [])) <= 2, "pages hold at most MaxKeys")
    seen += [o["Key"] for o in p.get("Contents", [])]
check(seen == everything, f"v2 pages list every key once, in byte order: {seen}")
seen = []
for p in full.get_paginator("list_objects").paginate(Bucket=B, PaginationConfig={"PageSize": 3}):
    seen += [o["Key"] for o in p.get("Contents", [])]
check(seen == everything, f"v1 pages: {seen}")
after = full.list_objects_v2(Bucket=B, StartAfter="photos/2025/c.jpg", Prefix="photos/")
check([o["Key"] for o in after["Contents"]] == ["photos/x y+z%.jpg", "photos/ünï/ç.txt"], "start-after")
rolled = full.list_objects_v2(Bucket=B, Delimiter="/", MaxKeys=1)
check(rolled["IsTruncated"] and rolled["KeyCount"] == 1, "a common prefix counts as a key")

# Copy and delete.
c = full.copy_object(Bucket=B, Key="copy.txt", CopySource={"Bucket": B, "Key": "top.txt"})
check(c["CopyObjectResult"]["ETag"] == full.head_object(Bucket=B, Key="top.txt")["ETag"], "copy ETag")
check(full.get_object(Bucket=B, Key="copy.txt")["Body"].read() == b"top.txt", "copied bytes")
refused(
    lambda: full.copy_object(Bucket=B, Key="top.txt", CopySource={"Bucket": B, "Key": "top.txt"}),
    "InvalidRequest",
    "copy onto itself without REPLACE",
)
full.copy_object(
    Bucket=B, Key="top.txt", CopySource={"Bucket": B, "Key": "top.txt"},
    MetadataDirective="REPLACE", ContentType="text/plain", Metadata={"v": "2"},
)
check(full.head_object(Bucket=B, Key="top.txt")["Metadata"] == {"v": "2"}, "REPLACE metadata")
full.delete_object(Bucket=B, Key="copy.txt")
full.delete_object(Bucket=B, Key="never-was")  # deleting a missing key is not an error
d = full.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "tab\there"}, {"Key": "a&b<c>.txt"}]})
check(sorted(x["Key"] for x in d["Deleted"]) == ["a&b<c>.txt", "tab\there"], f"DeleteObjects: {d}")
refused(lambda: full.head_object(Bucket=B, Key="a&b<c>.txt"), "404", "deleted")

# Multipart: 100 MiB through the managed transfer, and the low-level calls.
big = os.urandom(100 << 20)
cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)
full.upload_fileobj(io.BytesIO(big), B, "big.bin", Config=cfg)
hb = full.head_object(Bucket=B, Key="big.bin")
check(hb["ContentLength"] == len(big), "multipart size")
check(hb["ETag"].strip('"').endswith("-13"), f"multipart ETag: {hb['ETag']}")
out = io.BytesIO()
full.download_fileobj(B, "big.bin", out, Config=cfg)
check(hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(big).digest(), "100 MiB round trip")
del out
u = full.create_multipart_upload(Bucket=B, Key="parts.bin", ContentType="application/x-parts")
uid = u["UploadId"]
p1 = full.upload_part(Bucket=B, Key="parts.bin", UploadId=uid, PartNumber=1, Body=b"a" * (5 << 20))
p2 = full.upload_part(Bucket=B, Key="parts.bin", UploadId=uid, PartNumber=2, Body=b"tail")
lp = full.list_parts(Bucket=B, Key="parts.bin", UploadId=uid)
check([p["PartNumber"] for p in lp["Parts"]] == [1, 2], "ListParts")
lu = full.list_multipart_uploads(Bucket=B)
check([x["UploadId"] for x in lu.get("Uploads", [])] == [uid], "ListMultipartUploads")
refused(
    lambda: full.complete_multipart_upload(
        Bucket=B, Key="parts.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": p2["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}]},
    ),
    "InvalidPartOrder",
    "parts out of order",
)
refused(
    lambda: full.complete_multipart_upload(
        Bucket=B, Key="parts.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
    ),
    "InvalidPart",
    "a wrong part ETag",
)
done = full.complete_multipart_upload(
    Bucket=B, Key="parts.bin", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]},
)
check(done["ETag"].strip('"').endswith("-2"), "two-part ETag")
gp = full.get_object(Bucket=B, Key="parts.bin")
check(gp["ContentType"] == "application/x-parts" and gp["ContentLength"] == (5 << 20) + 4, "assembled")
u2 = full.create_multipart_upload(Bucket=B, Key="aborted.bin")["UploadId"]
full.upload_part(Bucket=B, Key="aborted.bin", UploadId=u2, PartNumber=1, Body=b"x")
small = full.upload_part(Bucket=B, Key="aborted.bin", UploadId=u2, PartNumber=2, Body=b"y")
refused(
    lambda: full.complete_multipart_upload(
        Bucket=B, Key="aborted.bin", UploadId=u2,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": hashlib.md5(b"x").hexdigest()},
                                   {"PartNumber": 2, "ETag": small["ETag"]}]},
    ),
    "EntityTooSmall",
    "a small part that is not the last",
)
full.abort_multipart_upload(Bucket=B, Key="aborted.bin", UploadId=u2)
refused(lambda: full.list_parts(Bucket=B, Key="aborted.bin", UploadId=u2), "NoSuchUpload", "aborted")

# Presigned URLs (SigV4, and boto3's default SigV2 for GET): GET and PUT work without the SDK;
# an expired or altered one does not.
v2_url = full.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "top.txt"}, ExpiresIn=60)
check(http("GET", v2_url) == (200, b"top.txt"), "presigned GET (SigV2)")
full = client(CFG["full"], signature_version="s3v4")
url = full.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "top.txt"}, ExpiresIn=60)
check("X-Amz-Signature=" in url, f"a SigV4 URL: {url}")
check(http("GET", url) == (200, b"top.txt"), "presigned GET")
put_url = full.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "presigned.txt"}, ExpiresIn=60)
status, text = http("PUT", put_url, data=b"via presign")
check(status == 200, f"presigned PUT: {status} {text[:300]}")
check(full.get_object(Bucket=B, Key="presigned.txt")["Body"].read() == b"via presign", "presigned bytes")
expired = full.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "top.txt"}, ExpiresIn=1)
time.sleep(2.5)
status, text = http("GET", expired)
check(status == 403 and b"AccessDenied" in text, f"expired presign: {status} {text[:200]}")
tampered = url.replace("top.txt", "copy.txt")
status, text = http("GET", tampered)
check(status == 403 and b"SignatureDoesNotMatch" in text, f"tampered presign: {status} {text[:200]}")

# Refusals.
refused(lambda: client(CFG["full"], secret="x" * 40).list_buckets(), "SignatureDoesNotMatch", "wrong secret")
unknown = {"access_key_id": "AKUPNOSUCHKEY0000000", "secret_access_key": "y" * 40}
refused(lambda: client(unknown).list_buckets(), "InvalidAccessKeyId", "unknown key")
refused(lambda: other.get_object(Bucket=B, Key="top.txt"), "AccessDenied", "other project reads")
refused(lambda: other.put_object(Bucket=B, Key="x", Body=b"x"), "AccessDenied", "other project writes")
refused(lambda: other.list_objects_v2(Bucket=B), "AccessDenied", "other project lists")
check(ro.get_object(Bucket=B, Key="top.txt")["Body"].read() == b"top.txt", "read-only key reads")
refused(lambda: ro.put_object(Bucket=B, Key="x", Body=b"x"), "AccessDenied", "read-only key writes")
refused(lambda: ro.delete_object(Bucket=B, Key="top.txt"), "AccessDenied", "read-only key deletes")
refused(lambda: ro.get_object(Bucket=CFG["public"], Key="hello.txt"), "AccessDenied", "ungranted bucket")
status, _ = http("GET", f"{ENDPOINT}/{B}/top.txt")
check(status == 403, f"anonymous read of a private bucket: {status}")
full.put_object(Bucket=CFG["public"], Key="hello.txt", Body=b"public hello", ContentType="text/plain")
check(http("GET", f"{ENDPOINT}/{CFG['public']}/hello.txt") == (200, b"public hello"), "public read")
status, _ = http("PUT", f"{ENDPOINT}/{CFG['public']}/hello.txt", data=b"defaced")
check(status == 403, f"anonymous write of a public bucket: {status}")
vhost = {"Host": f"{CFG['public']}.s3.localhost:{ENDPOINT.rsplit(':', 1)[1]}"}
check(http("GET", f"{ENDPOINT}/hello.txt", headers=vhost) == (200, b"public hello"), "virtual host")
refused(lambda: full.delete_bucket(Bucket=B), "BucketNotEmpty", "deleting a full bucket")
full.delete_bucket(Bucket="made-by-boto3")
refused(lambda: full.head_bucket(Bucket="made-by-boto3"), "404", "deleted bucket")
refused(lambda: full.get_bucket_policy(Bucket=B), "NotImplemented", "an operation not implemented")

print(f"ok {CHECKS} checks")
