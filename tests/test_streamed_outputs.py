"""The streaming paths of calc_stats at national size give what the one-shot paths gave.

A national month cannot be held whole (50,000,000 species-list rows, 0.5 GB of outputs), so
outputs are streamed to S3 as multipart uploads (bisonflow.stats.streamed_objects), matrices are
built from per-part pieces
and written a slice of sites at a time (bisonflow.stats.pam), and the new-this-month comparison
reads only the species listed in either month (bisonflow.stats.changes). Each is checked here
against the whole-table result on data small enough to hold, with the batch sizes turned
down so that every path crosses several batches, parts and pieces. Objects go to moto's
in-process S3, which, like S3, refuses a non-last part under 5 MiB.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from test_calc_stats import SUMMARY, RecordingS3, s3, spec, upload  # noqa: F401 (s3: fixture)

from bisonflow.stats import changes, pam, streamed_objects
from bisonflow.stats.streamed_objects import PART_SIZE, StreamedOutputs
from tasks import calc_stats


def _outputs(s3) -> StreamedOutputs:  # noqa: F811
    return StreamedOutputs(s3, s3.bucket, 4)


def _body(s3, key: str) -> bytes:  # noqa: F811
    return s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def test_an_object_larger_than_a_part_goes_up_in_parts_and_reads_back_whole(s3):  # noqa: F811
    data = np.random.default_rng(1).bytes(2 * PART_SIZE + 12345)
    outputs = _outputs(s3)
    stream = outputs.open("big.csv")
    for start in range(0, len(data), 3_000_001):  # writes that straddle part boundaries
        stream.write(data[start : start + 3_000_001])
    assert stream.streaming and stream.size == len(data)
    assert "Contents" not in s3.list_objects_v2(Bucket=s3.bucket)  # invisible until published
    assert stream.publish() == len(data)
    outputs.shutdown()
    assert _body(s3, "big.csv") == data
    head = s3.head_object(Bucket=s3.bucket, Key="big.csv")
    assert head["ContentType"] == "text/csv"


def test_the_emulator_refuses_a_part_under_5_mib_that_is_not_the_last(s3):  # noqa: F811
    """S3 refuses it at CompleteMultipartUpload (EntityTooSmall); so does moto, which is why
    the streamed objects need no strict seam here: if moto stopped refusing, this fails."""
    upload = s3.create_multipart_upload(Bucket=s3.bucket, Key="small-parts")["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=s3.bucket, Key="small-parts", UploadId=upload, PartNumber=n, Body=b"x" * 1024
            )["ETag"],
        }
        for n in (1, 2)
    ]
    with pytest.raises(ClientError, match="EntityTooSmall"):
        s3.complete_multipart_upload(
            Bucket=s3.bucket, Key="small-parts", UploadId=upload, MultipartUpload={"Parts": parts}
        )


def test_every_part_but_the_last_is_within_s3s_part_size_limits(s3):  # noqa: F811
    sizes = [streamed_objects.part_size(n) for n in range(1, streamed_objects.MAX_PARTS + 1)]
    assert min(sizes) >= streamed_objects.MIN_PART_SIZE
    assert max(sizes) <= streamed_objects.MAX_PART_SIZE
    assert sum(sizes) > 7 * 2**40  # 7.8 TiB: no output here runs out of part numbers
    sent: list[int] = []
    upload_part = s3.upload_part

    def recording(**kwargs):
        sent.append(len(kwargs["Body"]))
        return upload_part(**kwargs)

    s3.upload_part = recording
    outputs = _outputs(s3)
    stream = outputs.open("parts.csv")
    stream.write(bytes(PART_SIZE - 1))  # a write that ends a byte short of a part
    stream.write(bytes(2 * PART_SIZE + 2))  # completes the first, fills two more and a byte
    stream.publish()
    outputs.shutdown()
    assert sent == [PART_SIZE, PART_SIZE, PART_SIZE, 1]  # the last one byte, as S3 allows
    assert s3.head_object(Bucket=s3.bucket, Key="parts.csv")["ContentLength"] == 3 * PART_SIZE + 1


def test_an_object_within_one_part_is_one_put(s3):  # noqa: F811
    recorder = RecordingS3(s3)
    outputs = StreamedOutputs(recorder, s3.bucket, 2)
    stream = outputs.open("small.parquet")
    stream.write(b"abc")
    stream.publish()
    outputs.shutdown()
    assert recorder.puts == ["small.parquet"] and not stream.streaming
    assert _body(s3, "small.parquet") == b"abc"


def test_an_aborted_object_leaves_neither_object_nor_parts(s3):  # noqa: F811
    outputs = _outputs(s3)
    stream = outputs.open("gone.csv")
    stream.write(bytes(PART_SIZE + 1))
    assert stream.streaming
    outputs.abort()
    outputs.shutdown()
    assert "Contents" not in s3.list_objects_v2(Bucket=s3.bucket)
    assert not s3.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")


def test_a_failed_task_aborts_the_uploads_it_had_started(s3, monkeypatch):  # noqa: F811
    monkeypatch.setattr(streamed_objects, "PART_SIZE", 512)  # the parquet outputs stream
    started = []
    open_output = StreamedOutputs.open
    monkeypatch.setattr(
        StreamedOutputs,
        "open",
        lambda self, key: started.append(open_output(self, key)) or started[-1],
    )

    def figures_fail(*args):
        raise RuntimeError("simulated failure drawing a figure")

    monkeypatch.setattr(calc_stats, "figure_files", figures_fail)
    upload(s3)
    with pytest.raises(RuntimeError, match="drawing a figure"):
        calc_stats.run(spec(s3))
    assert any(stream.size > 512 for stream in started)  # some had gone up in parts
    assert not s3.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")
    assert "Contents" not in s3.list_objects_v2(Bucket=s3.bucket, Prefix=f"{SUMMARY}pam_")


def _parquet(table: pa.Table, row_group_size: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def test_a_matrix_from_many_pieces_equals_the_one_built_whole():
    rng = np.random.default_rng(5)
    sites = [f"{s:05d}" for s in rng.integers(0, 40, 3000)]
    taxa = [str(t) for t in rng.integers(900, 1300, 3000)]
    counts = rng.integers(0, 4, 3000)
    whole = pam.build_heatmap(sites, taxa, counts)
    sites_pieces, taxa_pieces, count_pieces = [], [], []
    for a, b in itertools.pairwise([0, 1, 700, 701, 2500, 3000]):  # parts of one table
        part = pa.table(
            {"s": pa.array(sites[a:b]).dictionary_encode(), "t": taxa[a:b], "c": counts[a:b]}
        )
        pam.add_pieces(part, sites_pieces, taxa_pieces, count_pieces)
    from_pieces = pam.heatmap_from_pieces(sites_pieces, taxa_pieces, count_pieces)
    assert from_pieces.sites.equals(whole.sites) and from_pieces.taxa.equals(whole.taxa)
    assert (from_pieces.matrix != whole.matrix).nnz == 0


@pytest.mark.parametrize("cells", [1, 7, 10_000])
def test_matrix_slices_are_the_table_in_order(cells):
    rng = np.random.default_rng(9)
    heatmap = pam.build_heatmap(
        [f"s{s}" for s in rng.integers(0, 30, 500)],
        [str(t) for t in rng.integers(0, 90, 500)],
        rng.integers(1, 9, 500),
    )
    batches = list(heatmap.to_batches(pam.OCC_COUNT, cells))
    whole = heatmap.to_table(pam.OCC_COUNT, encoded=True)
    assert pa.concat_tables(batches).cast(whole.schema).equals(whole)
    assert max(b.num_rows for b in batches) <= cells + max(np.diff(heatmap.matrix.indptr))


def test_a_heatmap_with_a_count_beyond_32_bits_is_summed_exactly():
    heatmap = pam.build_heatmap(["a", "a", "b"], ["1", "1", "2"], [2**40, 3, 1])
    assert heatmap.to_table(pam.OCC_COUNT)[pam.OCC_COUNT].to_pylist() == [2**40 + 3, 1]


def _county_part(rows) -> bytes:
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            name: pa.array(values, pa.string())
            for name, values in zip(changes.LABELS, columns[:-1], strict=True)
        }
        | {changes.OCC_COUNT: pa.array(columns[-1], pa.int64())}
    )
    return _parquet(table, 3)


def _random_month(rng: np.random.Generator, tiers: list[str]) -> list[tuple]:
    rows = []
    for _ in range(60):
        geoid, species = f"{rng.integers(1, 6):05d}", str(rng.integers(100, 112))
        tier = tiers[int(species) % len(tiers)] if rng.random() < 0.9 else tiers[0]
        rows.append((geoid, "AL", f"County {geoid}", species, f"Species {species}", tier, 1))
    return rows


def test_comparing_only_listed_species_gives_the_whole_lists_result(monkeypatch):
    monkeypatch.setattr(changes, "BATCH_ROWS", 4)
    rng = np.random.default_rng(3)
    tiers = [changes.PRESUMED_NATIVE, *changes.LISTED]
    months = [_random_month(rng, tiers), _random_month(rng, tiers)]
    parts = [[_county_part(m[:25]), _county_part(m[25:])] for m in months]
    lists = [changes.CountyList(lambda p=p: iter(p), f"s3://b/{i}/") for i, p in enumerate(parts)]
    streamed = changes.compare_lists(lists[0], lists[1], "2024-01")
    whole = changes.compare(
        changes.county_table(parts[0], "now"), changes.county_table(parts[1], "before"), "2024-01"
    )
    assert streamed.new_records.num_rows and streamed.lost_records.num_rows
    for name in ("new_records", "lost_records", "county_changes"):
        assert getattr(streamed, name).equals(getattr(whole, name)), name
    assert streamed.summary() == whole.summary()


def test_a_first_month_reads_no_rows_of_its_list_but_checks_its_columns(monkeypatch):
    rows = _random_month(np.random.default_rng(4), [changes.PRESUMED_NATIVE, *changes.LISTED])
    parts = [_county_part(rows[:30]), _county_part(rows[30:])]
    whole = changes.compare(changes.county_table(parts, "now"), None, None)

    def no_rows(*args, **kwargs):
        raise AssertionError("a first month's rows were read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_rows)
    first = changes.compare_lists(
        changes.CountyList(lambda: iter(parts), "s3://b/now/"), None, None
    )
    for name in ("new_records", "lost_records", "county_changes"):
        assert getattr(first, name).equals(getattr(whole, name)), name
    assert first.summary() == whole.summary()
    lacking = pq.read_table(io.BytesIO(parts[0])).drop_columns(["species"])
    with pytest.raises(ValueError, match=r"s3://b/bad/ lacks column\(s\) \['species'\]"):
        changes.compare_lists(
            changes.CountyList(lambda: iter([_parquet(lacking, 3)]), "s3://b/bad/"), None, None
        )


def test_the_benchmarks_leaner_completion_gives_moto_s_object_etag_and_checksum(
    s3,  # noqa: F811
    monkeypatch,
):
    """bench.stats_stand_in joins the parts once (moto holds a completed upload four times
    over); the object, its ETag and its checksum must be those moto's own completion gives."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3 import models

    from bench import stats_stand_in

    data = np.random.default_rng(2).bytes(PART_SIZE + 777)

    def complete(key: str):
        upload = s3.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]
        parts = []
        for number, start in enumerate((0, PART_SIZE), 1):
            body = data[start : start + PART_SIZE]
            answer = s3.upload_part(
                Bucket=s3.bucket, Key=key, UploadId=upload, PartNumber=number, Body=body
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        s3.complete_multipart_upload(
            Bucket=s3.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
        stored = models.s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(s3.bucket, key)
        checksum = (stored.checksum_type, stored.checksum_value)  # S3 computes one always
        return _body(s3, key), s3.head_object(Bucket=s3.bucket, Key=key)["ETag"], checksum

    by_moto = complete("by-moto")
    monkeypatch.setattr(models.FakeMultipart, "complete", models.FakeMultipart.complete)
    stats_stand_in.install()
    assert models.FakeMultipart.complete is stats_stand_in._complete
    assert complete("by-bench") == by_moto
    assert by_moto[0] == data and by_moto[1].endswith('-2"')
    assert by_moto[2][0] == "FULL_OBJECT" and by_moto[2][1]


def test_the_task_role_may_abort_the_uploads_it_starts(runtime):
    """A failed calc_stats aborts its multipart uploads (StreamedOutputs.abort), which IAM
    allows only with s3:AbortMultipartUpload (s3:PutObject covers the upload itself); the
    local runtime enforces the template's policies as AWS does."""
    import boto3

    from bisonflow.layout import MonthLayout
    from bisonflow.local.credentials import role_credentials

    assert runtime.deployment
    bucket = runtime.deployment.bucket
    (role,) = [
        r["Arn"]
        for r in runtime.clients["iam"].list_roles()["Roles"]
        if "TaskInstanceRole" in r["RoleName"]
    ]
    task = boto3.client(
        "s3",
        endpoint_url=runtime.endpoint_url,
        region_name=runtime.clients["s3"].meta.region_name,
        **role_credentials(role, "test-streamed"),
    )
    run = MonthLayout.for_run("2001-02", "abort-check")  # a month no run publishes
    key = f"{run.summary_prefix}heatmap_county.parquet"  # an output calc_stats streams
    upload = task.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    task.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x")
    task.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
    assert not runtime.clients["s3"].list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_uploads_carry_a_crc32_checksum_and_no_sha256_of_the_body(monkeypatch):
    """Over plain HTTP (the local stand-in) botocore signed every body's SHA-256 on top of
    its CRC32 checksum; an S3 client of bisonflow.aws sends UNSIGNED-PAYLOAD, as it does
    on HTTPS, and keeps the checksum."""
    from botocore.awsrequest import AWSResponse

    from bisonflow import aws

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    aws.reset_clients()
    sent: list[dict[str, str]] = []

    def capture(request, **kwargs):  # answers in place of the server, nothing is sent
        sent.append(dict(request.headers))
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, _NoBody())

    client = aws.client("s3")
    client.meta.events.register("before-send.s3.UploadPart", capture)
    try:
        client.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=b"x" * (1 << 20))
    finally:
        aws.reset_clients()
    (headers,) = sent
    assert headers["X-Amz-Content-SHA256"] == b"UNSIGNED-PAYLOAD"
    assert "x-amz-checksum-crc32" in {k.lower() for k in headers}


class _NoBody:
    def stream(self):
        return iter([b""])


class _CompletedThenLost:
    """Completes the upload, then answers as S3 answers botocore's retry of a completion
    whose first answer never arrived: NoSuchUpload."""

    def __init__(self, real, replace_with: bytes | None = None) -> None:
        self._real, self._replace_with = real, replace_with

    def complete_multipart_upload(self, **kwargs):
        self._real.complete_multipart_upload(**kwargs)
        if self._replace_with is not None:  # another writer's object lands at the key
            self._real.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=b"other")
        raise ClientError({"Error": {"Code": "NoSuchUpload"}}, "CompleteMultipartUpload")

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_a_completion_retried_after_it_succeeded_is_success(s3):  # noqa: F811
    data = np.random.default_rng(2).bytes(PART_SIZE + 1000)
    outputs = StreamedOutputs(_CompletedThenLost(s3), s3.bucket, 2)
    stream = outputs.open("retried.csv")
    stream.write(data)
    assert stream.publish() == len(data)
    outputs.shutdown()
    assert _body(s3, "retried.csv") == data
    etag = s3.head_object(Bucket=s3.bucket, Key="retried.csv")["ETag"].strip('"')
    assert etag.endswith("-2")


def test_an_upload_gone_with_another_object_at_its_key_is_an_error(s3):  # noqa: F811
    outputs = StreamedOutputs(_CompletedThenLost(s3, replace_with=b"other"), s3.bucket, 2)
    stream = outputs.open("replaced.csv")
    stream.write(np.random.default_rng(3).bytes(PART_SIZE + 1000))
    with pytest.raises(ValueError, match=r"replaced\.csv: upload .* is gone and the object"):
        stream.publish()
    outputs.shutdown()
