"""The streaming feature-push job (components/streaming runs it with Flink): events.py transforms, push.py
sends to Feast, settings.py reads the environment, job.py wires them into PyFlink."""
