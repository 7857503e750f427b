"""daytonaflow.expressions"""
