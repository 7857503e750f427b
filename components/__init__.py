"""daytonaflow.components"""
