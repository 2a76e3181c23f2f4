#!/usr/bin/env python3
"""Smoke test: create infra/template.yaml's table and queues on a moto server, as given.

Run it through scripts/with-moto.sh (it reads MOTO_ENDPOINT):

    scripts/with-moto.sh .venv/bin/python scripts/template-smoke.py

It takes each AWS::DynamoDB::Table and AWS::SQS::Queue from the template, passes their
properties to the matching API calls (CreateTable, UpdateTimeToLive, UpdateContinuousBackups,
CreateQueue with RedrivePolicy) and checks what the emulator reports back: the GSI, the TTL
attribute, the redrive policy, and that a message received maxReceiveCount times moves to the DLQ.
It proves the template's properties are ones the emulator (and the Rust local stack, which does the
same with serde_yaml) accepts; it does not replace cfn-lint.
"""
import json
import os
import sys
import uuid

import boto3
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "infra", "template.yaml")


def main() -> int:
    endpoint = os.environ["MOTO_ENDPOINT"]
    with open(TEMPLATE, encoding="utf-8") as f:
        template = yaml.safe_load(f)  # safe_load rejects any `!` tag, as serde_yaml would not map it
    resources = template["Resources"]
    suffix = uuid.uuid4().hex[:8]
    ddb = boto3.client("dynamodb", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)

    # ---- tables ----
    tables = {}
    for logical_id, res in resources.items():
        if res["Type"] != "AWS::DynamoDB::Table":
            continue
        p = res["Properties"]
        name = f"{logical_id}-{suffix}"
        ddb.create_table(
            TableName=name,
            BillingMode=p["BillingMode"],
            AttributeDefinitions=p["AttributeDefinitions"],
            KeySchema=p["KeySchema"],
            GlobalSecondaryIndexes=p.get("GlobalSecondaryIndexes", []),
            SSESpecification={"Enabled": p["SSESpecification"]["SSEEnabled"]},
        )
        ttl = p["TimeToLiveSpecification"]
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
        )
        pitr = p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": pitr},
        )
        desc = ddb.describe_table(TableName=name)["Table"]
        gsis = {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])}
        want = {g["IndexName"] for g in p.get("GlobalSecondaryIndexes", [])}
        assert gsis == want, (gsis, want)
        got_ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert got_ttl["AttributeName"] == ttl["AttributeName"], got_ttl
        assert got_ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING"), got_ttl
        # One item through the GSI.
        ddb.put_item(
            TableName=name,
            Item={
                "PK": {"S": "DIST#d1"},
                "SK": {"S": "PROFILE"},
                "GSI1PK": {"S": "TIER#1"},
                "GSI1SK": {"S": "DIST#d1"},
            },
        )
        hits = ddb.query(
            TableName=name,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "TIER#1"}},
        )["Count"]
        assert hits == 1, hits
        tables[logical_id] = name
        print(f"table {logical_id}: ok (GSIs {sorted(gsis)}, TTL {ttl['AttributeName']}, PITR {pitr})")

    # ---- queues: DLQs first, since main queues point at them ----
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    urls, arns = {}, {}

    def create(logical_id):
        if logical_id in urls:
            return
        p = queues[logical_id].get("Properties", {})
        attrs = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in p:
                attrs[key] = str(p[key])
        if p.get("SqsManagedSseEnabled"):
            attrs["SqsManagedSseEnabled"] = "true"
        if "RedrivePolicy" in p:
            rp = p["RedrivePolicy"]
            target = rp["deadLetterTargetArn"]["Fn::GetAtt"]
            assert target[1] == "Arn", target
            create(target[0])
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arns[target[0]], "maxReceiveCount": str(rp["maxReceiveCount"])}
            )
        url = sqs.create_queue(QueueName=f"{logical_id}-{suffix}", Attributes=attrs)["QueueUrl"]
        urls[logical_id] = url
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    for logical_id in queues:
        create(logical_id)

    for logical_id, res in queues.items():
        p = res.get("Properties", {})
        got = sqs.get_queue_attributes(QueueUrl=urls[logical_id], AttributeNames=["All"])["Attributes"]
        if "VisibilityTimeout" in p:
            assert got["VisibilityTimeout"] == str(p["VisibilityTimeout"]), got
        if "MessageRetentionPeriod" in p:
            assert got["MessageRetentionPeriod"] == str(p["MessageRetentionPeriod"]), got
        if "RedrivePolicy" not in p:
            print(f"queue {logical_id}: ok (retention {got.get('MessageRetentionPeriod')}s)")
            continue
        rp = json.loads(got["RedrivePolicy"])
        dlq = p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        max_receive = int(p["RedrivePolicy"]["maxReceiveCount"])
        assert rp["deadLetterTargetArn"] == arns[dlq], rp
        assert int(rp["maxReceiveCount"]) == max_receive, rp
        # A message received maxReceiveCount times without being deleted moves to the DLQ.
        sqs.send_message(QueueUrl=urls[logical_id], MessageBody='{"smoke":true}')
        for _ in range(max_receive):
            msgs = sqs.receive_message(
                QueueUrl=urls[logical_id], MaxNumberOfMessages=1, VisibilityTimeout=0
            ).get("Messages", [])
            assert len(msgs) == 1, msgs
        leftover = sqs.receive_message(QueueUrl=urls[logical_id], VisibilityTimeout=0).get("Messages", [])
        assert leftover == [], leftover
        dead = sqs.receive_message(QueueUrl=urls[dlq]).get("Messages", [])
        assert len(dead) == 1 and dead[0]["Body"] == '{"smoke":true}', dead
        print(
            f"queue {logical_id}: ok (visibility {got['VisibilityTimeout']}s, "
            f"dead-letters to {dlq} after {max_receive} receives)"
        )

    # Clean up, so a shared emulator stays tidy.
    for name in tables.values():
        ddb.delete_table(TableName=name)
    for url in urls.values():
        sqs.delete_queue(QueueUrl=url)
    print(f"template smoke: {len(tables)} table(s), {len(urls)} queue(s) ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
