"""daytonaflow.localserver"""
