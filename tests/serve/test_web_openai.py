"""The OpenAI-compatible API with real clients nobody here wrote: the ``openai`` package (sync and
streaming), LangChain's ``ChatOpenAI`` and ``curl``, against the real server (uvicorn on 127.0.0.1)
over a real knowledge base, answering without a model (quoted answers: fast, and the same each time).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import openai
import pytest

from openai_fixtures import WATER, LiveServer, make_key, serve_app, small_kb_container

MODEL = "neoc-assistant"


@pytest.fixture(scope="module")
def served(embedder, tmp_path_factory):
    key, hashed = make_key()
    container = small_kb_container(tmp_path_factory.mktemp("openai-api"), embedder,
                                   serve={"api_keys": {"tester": hashed}})
    with LiveServer(serve_app(container.assistant)) as server:
        server.key = key
        server.container = container
        yield server


@pytest.fixture
def client(served):
    return openai.OpenAI(base_url=served.base_url, api_key=served.key, max_retries=0, timeout=120)


def test_the_openai_client_lists_the_model_and_gets_a_cited_answer(client, served):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL

    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WATER}])
    choice = completion.choices[0]
    text = choice.message.content
    assert "15 litres per person per day" in text and "[1]" in text
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "\n\nSources:\n[1] 11-minimum-standards-wash-shelter.md" in text  # a client that shows only text
    references = choice.model_extra["references"]
    assert references[0]["n"] == 1 and references[0]["source"] == "11-minimum-standards-wash-shelter.md"
    assert references[0]["chunk_id"] and references[0]["excerpt"] and references[0]["score"] > 0
    details = choice.model_extra["neoc"]
    assert details["mode"] == "extractive" and details["verification"]["status"] == "extractive"
    assert details["kb_version"] == served.container.assistant.kb_version()
    assert completion.usage.completion_tokens > 10 and completion.usage.total_tokens > completion.usage.prompt_tokens
    assert completion.usage.model_extra["estimated"] is True  # no model ran: words counted, and said so


def test_streaming_gives_the_same_text_in_chunks_then_references_and_usage(client):
    whole = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WATER}])
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WATER}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].choices[0].finish_reason == "stop"
    assert finishing[0].choices[0].model_extra["references"][0]["source"] == "11-minimum-standards-wash-shelter.md"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert len({c.id for c in chunks}) == 1


def test_earlier_messages_are_the_conversation_a_follow_up_is_read_with(client, served):
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WATER}])
    alone = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "and for children?"}])
    follow = client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "You are a helpful assistant."},  # Open WebUI may send one: ignored
        {"role": "user", "content": WATER},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and for children?"}])
    understood = follow.choices[0].model_extra["neoc"]["understood_as"]
    assert understood and "per day" in understood and understood != "and for children?"
    assert follow.choices[0].message.content.splitlines()[-1] != ""  # an answer, not an error
    assert alone.choices[0].model_extra["neoc"]["understood_as"] == ""
    assert f"Understood as: {understood}" in follow.choices[0].message.content


@pytest.mark.parametrize("extra,param,words", [
    ({"n": 2}, "n", "n > 1 is not supported"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools",
     "Tools and function calling are not supported"),
    ({"logprobs": True}, "logprobs", "logprobs are not supported"),
    ({"response_format": {"type": "json_object"}}, "response_format", "Only text answers"),
])
def test_what_the_assistant_cannot_do_is_refused_with_a_400_that_says_so(client, extra, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WATER}], **extra)
    error = caught.value.body
    assert caught.value.status_code == 400 and words in error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_sampling_knobs_are_accepted_and_named_as_ignored(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": WATER}], temperature=0.2, max_tokens=5, seed=1)
    assert raw.headers["x-neoc-ignored"] == "max_tokens,seed,temperature"
    assert "15 litres" in raw.parse().choices[0].message.content  # max_tokens did not cut the verified answer


def test_errors_have_openai_shape_and_status(client, served):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": WATER}])
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "   "}])
    assert "The question is empty" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "hello"}])
    assert "last message must be the user's question" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
    assert "only text content" in caught.value.body["message"]
    wrong = openai.OpenAI(base_url=served.base_url, api_key="neoc-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.body["code"] == "invalid_api_key" and "apikey new" in caught.value.body["message"]


def test_langchain_chat_openai_runs_a_chain_on_the_server(served):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=served.base_url, api_key=served.key, model=MODEL, max_retries=0, timeout=120)
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | llm | StrOutputParser()
    text = chain.invoke({"question": WATER})
    assert "15 litres per person per day" in text and "[1]" in text
    streamed = list(chain.stream({"question": WATER}))
    assert len(streamed) > 1 and "".join(streamed) == text
    message = llm.invoke(WATER)
    assert message.usage_metadata["total_tokens"] > 0
    assert message.response_metadata["finish_reason"] == "stop"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_server_sent_events_ending_in_done(served):
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": WATER}]})
    proc = subprocess.run(["curl", "-sS", "-N", "--fail-with-body", f"{served.base_url}/chat/completions",
                           "-H", f"Authorization: Bearer {served.key}", "-H", "Content-Type: application/json",
                           "-d", body], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    events = [line[len("data: "):] for line in proc.stdout.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and all(line == "" or line.startswith("data: ") for line in proc.stdout.splitlines())
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "15 litres" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["total_tokens"] > 0
    no_key = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{served.base_url}/models"],
                            capture_output=True, text=True, timeout=30)
    assert no_key.stdout == "401"


def test_every_answer_is_in_the_audit_trail_with_its_caller_and_no_secret(client, served):
    question = "What are the EOC activation levels?"
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                                extra_headers={"X-Conversation-Id": "drill-7"})
    audit_id = completion.choices[0].model_extra["neoc"]["audit_id"]
    assistant = served.container.assistant
    records = assistant.audit_answers(conversation="drill-7")
    assert [r["id"] for r in records] == [audit_id]
    record = records[0]
    assert record["who"] == "key:tester" and record["channel"] == "openai" and record["question"] == question
    assert record["answer"] == completion.choices[0].message.content.split("\n\nSources:\n")[0]
    assert record["kb_version"] == assistant.kb_version() and record["sources"][0]["chunk_id"]
    assert assistant.audit_verify()["ok"]
    trail = served.container.settings.paths.log_dir / "audit"
    assert all(served.key not in p.read_text() for p in trail.iterdir() if p.is_file())
